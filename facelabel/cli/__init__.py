"""The ``facelabel`` command. Commands live in modules by area; this file wires them up."""

from __future__ import annotations

import dataclasses

import click

from facelabel import __version__
from facelabel.settings import SettingsError, get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facelabel")
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="SQLAlchemy database URL. Default: FACELABEL_DB_URL, else sqlite:///facelabel.db.",
)
@click.pass_context
def main(ctx: click.Context, db_url: str | None) -> None:
    """Label faces in image folders: eyeglasses, beard, mustache, hat.

    \b
    facelabel label ~/photos                    # in this process, SQLite
    facelabel enqueue ~/photos --wait           # via Redis and Celery workers
    facelabel query --has eyeglasses --format csv
    """
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = dataclasses.replace(settings, db_url=db_url) if db_url else settings


from facelabel.cli import labeling, predict, results, retraining, training  # noqa: E402

for module in (labeling, results, training, predict, retraining):
    for command in module.COMMANDS:
        main.add_command(command)
