"""Helpers shared by command modules."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session, sessionmaker

from db.engine import open_database
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
