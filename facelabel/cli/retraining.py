"""The retraining cycle: ``models``, ``retrain``, ``correct``. None of these import TensorFlow."""

from __future__ import annotations

import getpass
import os
import time

import click

from facelabel.cli.common import sessions_for
from facelabel.cli.output import emit_rows, format_option

MODEL_COLUMNS = (
    "id", "name", "active", "created", "backbone", "input_size",
    "new_person_macro_f1", "new_person_95", "new_person_from",
    "gate_macro_f1", "champion_macro_f1", "decision",
)  # fmt: skip
RUN_COLUMNS = (
    "id",
    "status",
    "trigger",
    "created",
    "finished",
    "corrections",
    "challenger",
    "champion",
    "decision",
)
SCHEDULE_COLUMNS = ("id", "when", "created", "last_run")


@click.group()
def models():
    """Model versions: list them, promote one, roll back."""


@models.command("list")
@format_option()
@click.pass_obj
def list_models(settings, fmt):
    """Versions, newest first, with each one's macro-F1 for a person it never saw.

    \b
    new_person_macro_f1, new_person_95: the estimate and its 95 % interval, from
      cross-validation by person (the bundled model's card) or a retraining gate that held
      out whole people; blank when neither measured it (new_person_from says which)
    gate_macro_f1, champion_macro_f1: the last gate's scores of the version and its champion
      on the same held-out faces (its decision says how they were split)
    """
    from db.registry import list_versions

    with sessions_for(settings)() as session:
        emit_rows(list_versions(session), MODEL_COLUMNS, fmt)


@models.command()
@click.argument("version")
@click.pass_obj
def promote(settings, version):
    """Make VERSION the active model: workers use it from their next chunk."""
    from db.registry import promote as run

    with sessions_for(settings).begin() as session:
        promoted = run(session, version)
        click.echo(f"active model: {promoted.name}")


@models.command()
@click.pass_obj
def rollback(settings):
    """Re-activate the version that was active before the current one."""
    from db.registry import rollback as run

    with sessions_for(settings).begin() as session:
        restored = run(session)
        click.echo(f"active model: {restored.name}")


@click.group()
def retrain():
    """Retraining: now, on a schedule, and what ran.

    \b
    A run trains a challenger on FACELABEL_TRAIN_DATA plus the human corrections, scores it
    and the active model (the champion) on the same held-out faces, and promotes it unless it
    is worse by more than FACELABEL_PROMOTE_TOLERANCE.
    \b
    What trains: FACELABEL_TRAIN_RECIPE when set (at FACELABEL_TRAIN_SIZE), else the
    champion's own recipe at its input size (or at FACELABEL_TRAIN_SIZE, when that is set),
    as its model.json records them. A weights file that recipe started from must be on the
    trainer's machine; if it is not, the run fails and its decision names the file and how
    to make it (nothing else is trained instead).
    \b
    Held-out faces: a data folder with CelebA's identity_CelebA.txt is split by person, the
    same people held out as the champion's own training held out when it was split so; a
    folder without one is split by image, and the run's decision says so.
    """


@retrain.command()
@click.option("--wait", is_flag=True, help="Follow the run until the gate has decided.")
@click.pass_obj
def now(settings, wait):
    """Queue one training run on queue ``train``; prints its id.

    Refused while another run is queued or running.
    """
    import redis
    from kombu.exceptions import OperationalError

    from db.models import TrainingRun
    from db.training_runs import ACTIVE, RunBusy, claim_run, end_unsent
    from worker.celery_app import app
    from worker.lease import training_lock_held
    from worker.tasks import retrain_task

    sessions = sessions_for(settings)
    try:
        with sessions.begin() as session:
            run_id = claim_run(session, "cli", trainer_alive=lambda: training_lock_held(settings.broker)).id
    except RunBusy as exc:
        raise click.ClickException(f"{exc}; see `facelabel retrain runs`") from None
    except redis.RedisError as exc:
        raise click.ClickException(f"cannot reach the broker: {exc}") from None
    try:
        with app.connection_for_write(settings.broker) as connection:  # this command's broker
            retrain_task.apply_async(kwargs={"run_id": run_id}, connection=connection, retry=False)
    except OperationalError as exc:
        with sessions.begin() as session:
            end_unsent(session, run_id, "could not be sent to the broker")
        raise click.ClickException(f"cannot reach the broker: {exc}") from None
    click.echo(run_id)
    if not wait:
        return
    while True:
        with sessions() as session:
            run = session.get(TrainingRun, run_id)
            if run.status not in ACTIVE:
                break
        time.sleep(1)
    said = run.decision or ""
    click.echo(f"run {run_id}: {said if said.startswith(run.status) else f'{run.status}: {said}'}")
    if run.status in ("failed", "skipped"):
        raise SystemExit(1)


@retrain.command()
@click.argument("cron", required=False)
@click.option(
    "--every", "every_seconds", type=click.IntRange(min=1), metavar="SECONDS", help="Instead of CRON."
)
@click.pass_obj
def schedule(settings, cron, every_seconds):
    """Retrain on a cron schedule (five fields, UTC), e.g. "0 3 * * 0" = Sundays 03:00.

    Beat picks it up within seconds, without a restart.
    """
    from db.schedules import add_schedule
    from worker.scheduler import parse_cron

    if (cron is None) == (every_seconds is None):
        raise click.UsageError('give a CRON expression ("0 3 * * 0") or --every SECONDS')
    if cron is not None:
        parse_cron(cron)
    with sessions_for(settings).begin() as session:
        click.echo(add_schedule(session, cron=cron, every_seconds=every_seconds).id)


@retrain.command("list")
@format_option()
@click.pass_obj
def list_schedules(settings, fmt):
    """The retraining schedules."""
    from db.schedules import list_schedules as rows

    with sessions_for(settings)() as session:
        emit_rows(rows(session), SCHEDULE_COLUMNS, fmt)


@retrain.command()
@click.argument("schedule_id", type=int)
@click.pass_obj
def remove(settings, schedule_id):
    """Remove schedule SCHEDULE_ID (a run in progress carries on)."""
    from db.schedules import remove_schedule

    with sessions_for(settings).begin() as session:
        if not remove_schedule(session, schedule_id):
            raise click.ClickException(f"no schedule {schedule_id}")
    click.echo(f"removed schedule {schedule_id}")


@retrain.command()
@click.argument("run_id", type=int)
@click.pass_obj
def cancel(settings, run_id):
    """Cancel queued run RUN_ID, e.g. one whose message was lost with the broker's data."""
    from db.training_runs import cancel_run

    with sessions_for(settings).begin() as session:
        cancel_run(session, run_id)
    click.echo(f"cancelled training run {run_id}")


@retrain.command()
@format_option()
@click.pass_obj
def runs(settings, fmt):
    """Training runs, newest first, with the gate's decision."""
    from db.training_runs import list_runs

    with sessions_for(settings)() as session:
        emit_rows(list_runs(session), RUN_COLUMNS, fmt)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--face", type=click.IntRange(min=0), default=0, show_default=True, help="0 = the largest face."
)
@click.option("--set", "changes", multiple=True, required=True, metavar="ATTR=0|1", help="Repeatable.")
@click.option("--by", "author", help="Who corrects (default: the login name).")
@click.pass_obj
def correct(settings, path, face, changes, author):
    """Correct a face's labels; `query` shows them, the next retraining learns from them.

    \b
    facelabel correct /photos/a.jpg --face 0 --set hat=1 --set beard=0
    """
    from db.corrections import correct_face
    from facelabel.paths import stored_path

    values = dict(_change(c) for c in changes)
    with sessions_for(settings).begin() as session:
        correct_face(session, os.path.abspath(path), face, values, author or _login())
    click.echo(f"{stored_path(path)} face {face}: " + ", ".join(f"{a}={int(v)}" for a, v in values.items()))


def _change(text: str) -> tuple[str, bool]:
    from db.models import ATTRIBUTES

    attribute, _, value = text.partition("=")
    if attribute not in ATTRIBUTES or value not in ("0", "1"):
        raise click.BadParameter(f"expected ATTR=0|1 with ATTR one of {', '.join(ATTRIBUTES)}, got {text!r}")
    return attribute, value == "1"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


COMMANDS = (models, retrain, correct)
