"""``watch``: label complete new files as they arrive (facelabel/watch does the work);
``rescan``: the same for URL prefixes, a job per firing of a schedule that beat runs."""

from __future__ import annotations

import os
import signal
import threading

import click

from facelabel.cli.common import sessions_for
from facelabel.cli.labeling import ALIGNED
from facelabel.cli.output import emit_rows, format_option
from facelabel.confined import job_roots
from facelabel.storage import is_url
from facelabel.watch import timing

RESCAN_COLUMNS = ("id", "urls", "aligned", "when", "created", "last_run", "last_job")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(file_okay=False), metavar="PATH...")
@ALIGNED
@click.option("--enqueue", is_flag=True, help="Send each batch as a job to the workers (Redis) instead.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    is_flag=False,
    flag_value=timing.POLL,
    metavar="[SECONDS]",
    help=f"List the folders every SECONDS (default {timing.POLL:g}) instead of waiting for events; "
    "network shares, FUSE and overlays are polled without it.",
)
@click.option(
    "--rescan",
    type=click.FloatRange(min=1),
    default=timing.RESCAN,
    show_default=True,
    metavar="SECONDS",
    help="Scan everything this often for what events missed (files already labelled cost a listing).",
)
@click.pass_obj
def watch(settings, paths, aligned, enqueue, poll, rescan):
    """Label complete new files under PATH... as they arrive, until stopped (Ctrl-C, SIGTERM).

    A scan on start catches up with what arrived while no watcher ran; a folder that goes
    away (an unmounted share) is waited for, and its results are kept.

    \b
    facelabel watch ~/Pictures                       # labels in this process
    facelabel watch /srv/photos --enqueue --aligned  # jobs for the workers
    facelabel watch /mnt/nas/photos --poll 30        # list every 30 s
    """
    from facelabel.watch.labellers import LabelHere, SendToWorkers
    from facelabel.watch.watcher import Watcher
    from worker.submit import outermost

    if url := next((p for p in paths if is_url(p)), None):
        raise click.ClickException(
            f"watch follows local folders; rescan {url} on a schedule: "
            f"facelabel rescan schedule {url} --every SECONDS"
        )
    roots = outermost([os.path.abspath(os.path.expanduser(p)) for p in paths])
    job_roots(roots, settings.data_roots)  # outside FACELABEL_DATA_ROOTS: one line, now
    sessions = sessions_for(settings)
    if enqueue:
        _check_broker(settings)
    labeller = (SendToWorkers if enqueue else LabelHere)(sessions, settings, aligned=aligned)
    stop = threading.Event()

    def on_signal(number, _frame) -> None:
        if stop.is_set():  # asked twice: go now (a job cut short is caught up on next start)
            os._exit(128 + number)
        stop.set()
        click.echo("stopping after the current job (again to stop now)", err=True)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)

    def say(line: str) -> None:
        click.echo(settings.redact(line), err=True)  # an error's text may carry a URL

    Watcher(roots, labeller, poll=poll, rescan=rescan, say=say, heartbeat=settings.heartbeat_file).run(stop)


def _check_broker(settings) -> None:
    from kombu.utils.url import maybe_sanitize_url

    from worker.celery_app import app

    with app.connection_for_write(settings.broker) as connection:
        try:
            connection.ensure_connection(max_retries=1, timeout=5)
        except Exception as exc:
            reason = f"cannot reach the broker at {maybe_sanitize_url(settings.broker_url)}: {exc}"
            raise click.ClickException(settings.redact(reason)) from None


@click.group()
def rescan():
    """Rescan URL prefixes (s3://bucket/prefix/) on a schedule: what `watch` does for folders.

    \b
    Each firing submits one job over the prefixes, as `facelabel enqueue URL` would; content
    the model has labelled is skipped, so an unchanged prefix costs a listing and reads, not
    inference. A firing while the schedule's previous job is still running is skipped.
    """


@rescan.command("schedule")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--cron", metavar="CRON", help='Five fields, UTC: "*/15 * * * *" = every 15 minutes.')
@click.option(
    "--every", "every_seconds", type=click.IntRange(min=1), metavar="SECONDS", help="Instead of --cron."
)
@ALIGNED
@click.pass_obj
def schedule_rescan(settings, urls, cron, every_seconds, aligned):
    """Rescan URL... on a schedule; prints its id. Beat picks it up within seconds.

    \b
    facelabel rescan schedule s3://photos/incoming/ --every 300
    facelabel rescan schedule s3://photos/2024/ --cron "0 * * * *" --aligned
    """
    from db.schedules import RESCAN, add_schedule
    from worker.scheduler import parse_cron
    from worker.submit import absolute, outermost

    if (cron is None) == (every_seconds is None):
        raise click.UsageError('give --cron CRON ("*/15 * * * *") or --every SECONDS')
    if local := next((u for u in urls if not is_url(u)), None):
        raise click.UsageError(f"{local} is not a URL; watch a local folder with `facelabel watch {local}`")
    if cron is not None:
        parse_cron(cron)
    named = outermost([absolute(u) for u in urls])
    job_roots(named, settings.data_roots)  # outside FACELABEL_DATA_ROOTS: one line, now
    with sessions_for(settings).begin() as session:
        added = add_schedule(
            session,
            cron=cron,
            every_seconds=every_seconds,
            kind=RESCAN,
            options={"urls": named, "aligned": aligned},
        )
        click.echo(added.id)


@rescan.command("list")
@format_option()
@click.pass_obj
def list_rescans(settings, fmt):
    """The rescan schedules, with the last job each submitted."""
    from db.schedules import RESCAN, list_schedules

    with sessions_for(settings)() as session:
        emit_rows(list_schedules(session, RESCAN), RESCAN_COLUMNS, fmt)


@rescan.command("remove")
@click.argument("schedule_id", type=int)
@click.pass_obj
def remove_rescan(settings, schedule_id):
    """Remove rescan schedule SCHEDULE_ID (a job it submitted carries on)."""
    from db.schedules import RESCAN, remove_schedule

    with sessions_for(settings).begin() as session:
        if not remove_schedule(session, schedule_id, RESCAN):
            raise click.ClickException(f"no rescan schedule {schedule_id}")
    click.echo(f"removed rescan schedule {schedule_id}")


COMMANDS = (watch, rescan)
