"""``watch``: label complete new files as they arrive (facelabel/watch does the work)."""

from __future__ import annotations

import os
import signal
import threading

import click

from facelabel.cli.common import sessions_for
from facelabel.cli.labeling import ALIGNED
from facelabel.confined import job_roots
from facelabel.watch import timing


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


COMMANDS = (watch,)
