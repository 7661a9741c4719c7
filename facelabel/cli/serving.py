"""``facelabel serve``: the review app on the CLI's database."""

from __future__ import annotations

import secrets

import click

from facelabel.cli.common import sessions_for


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.pass_obj
def serve(settings, host, port):
    """Browse faces, review the model's least sure answers with the keyboard, see jobs and
    models in a browser. Bound to loopback by default; bound elsewhere, changes need a token
    (FACELABEL_SERVE_TOKEN, else a new one printed here).

    \b
    facelabel serve                # http://127.0.0.1:8765
    facelabel serve --host 0.0.0.0 # open /login?token=… once to make changes
    """
    import uvicorn

    from facelabel.web.app import create_app
    from facelabel.web.security import is_loopback

    token = None
    if not is_loopback(host):
        configured = settings.serve_token
        token = configured.get_secret_value() if configured else secrets.token_urlsafe(24)
        if configured is None:
            click.echo(f"changes need this token: open http://{host}:{port}/login?token={token}", err=True)
    app = create_app(settings, sessions_for(settings), token=token)
    click.echo(f"facelabel review app on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level, server_header=False)


COMMANDS = (serve,)
