"""Helpers shared by command modules."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.orm import Session, sessionmaker

from db.engine import open_database
from facelabel.destination import OutputError, check_file, check_folder
from facelabel.settings import Settings


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    """The database named by the settings, schema upgraded (DatabaseError otherwise)."""
    return open_database(settings.database)


def job_option(help_text: str = "Only this job."):
    return click.option("--job", "job_id", type=int, metavar="ID", help=help_text)


def check_job(sessions: sessionmaker[Session], job_id: int | None) -> None:
    from db.models import Job

    if job_id is not None:
        with sessions() as session:
            if session.get(Job, job_id) is None:
                raise click.ClickException(f"no job {job_id}")


def out_path(out: str, *, folder: bool = False) -> Path:
    """``--out`` checked before any work (a folder is created if missing): a usage error
    naming the folder when it cannot be written."""
    try:
        return check_folder(out) if folder else check_file(out)
    except OutputError as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
