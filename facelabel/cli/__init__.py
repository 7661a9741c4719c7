"""The ``facelabel`` command. Commands live in modules by area; this file wires them up."""

from __future__ import annotations

import logging
import os

import click

from facelabel import __version__
from facelabel.errors import FacelabelError
from facelabel.settings import Settings, get_settings


class FacelabelGroup(click.Group):
    """Every mistake is one line: an expected error (FacelabelError) becomes ``Error: …`` with
    exit status 1, a usage error ``Error: …`` with status 2 (without the usage text)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FacelabelError as exc:
            raise click.ClickException(_redacted(ctx, str(exc))) from None
        except click.UsageError as exc:
            exc.ctx = None  # `-h` shows the usage; the error stays one line
            raise


def _redacted(ctx: click.Context, message: str) -> str:
    settings = ctx.obj if isinstance(ctx.obj, Settings) else None
    return settings.redact(message) if settings is not None else message


@click.group(cls=FacelabelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facelabel")
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="SQLAlchemy database URL. Default: FACELABEL_DB_URL, else sqlite:///facelabel.db.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, TensorFlow's start-up lines included.")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, verbose: bool) -> None:
    """Label faces in image folders: eyeglasses, beard, mustache, hat.

    \b
    facelabel label ~/photos                    # in this process, SQLite
    facelabel enqueue ~/photos --wait           # via Redis and Celery workers
    facelabel query --has eyeglasses --format csv
    """
    if verbose:
        os.environ["FACELABEL_LOG_LEVEL"] = "debug"  # also for the processes this one starts
        get_settings.cache_clear()
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = settings.with_(db_url=db_url) if db_url else settings


from facelabel.cli import labeling, predict, results, retraining, serving, training, watching  # noqa: E402

for module in (labeling, results, training, predict, retraining, serving, watching):
    for command in module.COMMANDS:
        main.add_command(command)
