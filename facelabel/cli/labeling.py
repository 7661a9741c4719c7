"""Running jobs: ``label`` (embedded), ``enqueue`` (Redis), ``worker``, ``migrate``."""

from __future__ import annotations

import collections
import functools
import os
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor

import click

from facelabel.cli.common import sessions_for
from facelabel.paths import stored_path


class PathOrURL(click.Path):
    """An existing local path, or a URL (``s3://bucket/prefix/``) taken as it is."""

    def convert(self, value, param, ctx):
        from facelabel.storage import is_url

        return value if is_url(value) else super().convert(value, param, ctx)


PATHS = click.argument("paths", nargs=-1, required=True, type=PathOrURL(exists=True), metavar="PATH...")
ALIGNED = click.option(
    "--aligned", is_flag=True, help="Each image is one aligned face (CelebA-style crop): skip detection."
)
BATCH_SIZE = click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    metavar="N",
    help="Faces per forward pass (default FACELABEL_BATCH_SIZE or 32).",
)


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=_stderr(),
        transient=True,
    )


def _submit(
    settings, paths, aligned, batch_size, model, send, on_job=lambda job_id: None, drain=lambda: None
):
    from worker.submit import submit_job

    sessions = sessions_for(settings)
    return sessions, *submit_job(
        sessions,
        paths,
        settings=settings,
        aligned=aligned,
        batch_size=batch_size,
        model=model,
        send=send,
        on_job=on_job,
        drain=drain,
    )


# aligned chunks labelled at once by embedded `label`: one chunk's reading, decoding and SQL
# run while the other's batches go through the model (the classifier takes one batch at a time);
# photos wait for the detector, one photo batch at a time, so their chunks go one by one
ALIGNED_OVERLAP = 2


@click.command()
@PATHS
@ALIGNED
@click.option(
    "--model",
    metavar="M",
    help="Model directory or registered version "
    "(default: FACELABEL_MODEL, the active version, else the bundled model).",
)
@BATCH_SIZE
@click.pass_obj
def label(settings, paths, aligned, model, batch_size):
    """Label images here and now: no Redis, no workers (SQLite by default).

    \b
    facelabel label ~/photos                # finds the faces in each photo
    facelabel label ~/crops --aligned       # each image is one aligned face
    """
    from worker.labeling import label_chunk
    from worker.submit import ScanCounts, absolute, outermost, scan

    total = sum(1 for _ in scan(outermost([absolute(p) for p in paths]), ScanCounts()))
    clock = {}
    with _progress() as progress:
        task = progress.add_task("loading the model", total=total, rate="")

        def start(job_id: int) -> None:
            _load_model(sessions_for(settings), job_id, settings)
            if not aligned:
                from facelabel.vision.detector import warm_up

                warm_up(settings.detector)
            progress.update(task, description=f"job {job_id}")
            clock["start"] = time.perf_counter()

        overlap = ALIGNED_OVERLAP if aligned else 1
        chunks = ThreadPoolExecutor(overlap, thread_name_prefix="chunk")
        pending: collections.deque[tuple[Future, int]] = collections.deque()

        def finish_one() -> None:
            future, size = pending.popleft()
            future.result()
            progress.advance(task, size)
            rate = progress.tasks[0].completed / (time.perf_counter() - clock["start"])
            progress.update(task, rate=f"{rate:,.0f} img/s")

        def send(job_id: int, chunk: list[str], chunk_id: int) -> None:
            work = functools.partial(label_chunk, sessions_for(settings), job_id, chunk, settings=settings)
            pending.append((chunks.submit(work, chunk_id=chunk_id), len(chunk)))
            while len(pending) >= overlap:
                finish_one()

        def drain() -> None:
            while pending:
                finish_one()

        with chunks:
            sessions, job_id, counts = _submit(
                settings, paths, aligned, batch_size, model, send, start, drain
            )
    _echo_summary(sessions, job_id, counts, time.perf_counter() - clock["start"])


def _echo_summary(sessions, job_id: int, counts, elapsed: float) -> None:
    """The finished job's counts and rate, and where to look next."""
    from db.queries import job_counts

    with sessions() as session:
        totals = job_counts(session, job_id)
    click.echo(
        f"job {job_id}: {totals.images} images, {totals.faces} faces, {totals.failed} failures, "
        f"{counts.skipped} skipped (not images) in {elapsed:.1f} s "
        f"({totals.images / max(elapsed, 1e-9):,.1f} images/s)"
    )
    _report_unreadable(counts)
    if totals.failed:
        click.echo(f"see: facelabel failures --job {job_id}")
    click.echo(f"results: facelabel query --job {job_id}")


def _load_model(sessions, job_id: int, settings) -> None:
    from db.models import Job, ModelVersion
    from facelabel.vision.classifier import get_classifier

    with sessions() as session:
        version = session.get(ModelVersion, session.get(Job, job_id).model_version_id)
    get_classifier(version.path, settings, sha256=version.sha256)


@click.command()
@PATHS
@ALIGNED
@click.option("--wait", is_flag=True, help="Follow the job with a progress bar until it completes.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --wait: give up after this long (exit status 3; the job goes on).",
)
@BATCH_SIZE
@click.option("--model", metavar="M", help="Model directory or registered version.")
@click.pass_obj
def enqueue(settings, paths, aligned, wait, timeout, batch_size, model):
    """Register a job and send its chunks to the workers through Redis; prints the job id.

    \b
    facelabel enqueue ~/photos --wait
    """
    from kombu.exceptions import OperationalError
    from kombu.utils.url import maybe_sanitize_url

    from worker.celery_app import app
    from worker.tasks import label_chunk_task

    with app.connection_for_write(settings.broker) as connection:  # this command's broker
        try:
            connection.ensure_connection(max_retries=1, timeout=5)
        except Exception as exc:
            reason = f"cannot reach the broker at {maybe_sanitize_url(settings.broker_url)}: {exc}"
            raise click.ClickException(settings.redact(reason)) from None
        with app.producer_or_acquire(app.amqp.Producer(connection)) as producer:  # one for all chunks

            def send(job_id: int, chunk: list[str], chunk_id: int) -> None:
                try:
                    label_chunk_task.apply_async(
                        args=(job_id, chunk), kwargs={"chunk_id": chunk_id}, producer=producer
                    )
                except OperationalError as exc:
                    reason = f"job {job_id} interrupted: the broker went away ({exc}); enqueue again"
                    raise click.ClickException(settings.redact(reason)) from None

            sessions, job_id, counts = _submit(settings, paths, aligned, batch_size, model, send)
    click.echo(job_id)
    _stderr().print(f"job {job_id}: {counts.images} images queued, {counts.skipped} skipped (not images)")
    _report_unreadable(counts)
    if wait:
        _follow(sessions, job_id, counts.images, app, timeout)


def _report_unreadable(counts) -> None:
    if counts.unreadable:
        first = ", ".join(stored_path(p) for p in counts.unreadable_examples)
        click.echo(f"{counts.unreadable} folders could not be read and were left out: {first}", err=True)


def _follow(sessions, job_id: int, total: int, app, timeout: float | None) -> None:
    from db.models import Job
    from db.queries import job_counts

    if not app.control.ping(timeout=1.0):
        _stderr().print("no worker answered: start one with `facelabel worker`")
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"job {job_id}", total=total, rate="")
        while True:
            with sessions() as session:  # status first: counts read after "complete" are final
                status = session.get(Job, job_id).status
                counts = job_counts(session, job_id)
            finished = counts.done + counts.failed
            rate = finished / max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=finished, rate=f"{rate:,.0f} img/s")
            if status == "complete":
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                progress.stop()
                note = f"job {job_id}: {finished} of {total} images after {timeout:g} s; it goes on"
                click.echo(note, err=True)
                raise SystemExit(3)
            time.sleep(0.5)
    click.echo(
        f"job {job_id}: complete: {counts.done} images, {counts.faces} faces, {counts.failed} failures"
    )


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    help="Worker processes (default: 1 where the model runs on Keras, as on a GPU; on LiteRT, the "
    "CPU runtime, one per CPU this worker may use, at most 8, the CPUs' LiteRT threads shared out).",
)
@click.option("--queues", "-Q", default="label", show_default=True, help="Queues to consume.")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics of all this worker's processes here (FACELABEL_METRICS_PORT).",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def worker(settings, concurrency, queues, loglevel, metrics_port, celery_args):
    """A Celery worker (same as ``celery -A worker worker -Q label``); extra
    arguments go to Celery.

    \b
    facelabel worker --concurrency 1 --hostname gpu0@%h
    FACELABEL_GPU=auto facelabel worker     # lease a free GPU of this machine first
    """
    os.environ["FACELABEL_DB_URL"] = settings.db_url  # honour --db in the worker's settings
    lease = None
    if settings.gpu == "auto":
        from worker.gpu_lease import GpuError, lease_gpu, visible_gpus

        try:
            lease = lease_gpu(settings.broker, visible_gpus(settings.gpu_ids), node=settings.node)
        except GpuError as exc:
            raise click.ClickException(str(exc)) from None
        os.environ["CUDA_VISIBLE_DEVICES"] = lease.index  # before TensorFlow starts in the children
        _stderr().print(f"worker uses GPU {lease.index} of node {settings.node}")
    if concurrency is None:
        concurrency, threads = default_processes(settings, queues, len(os.sched_getaffinity(0)))
        if settings.runtime_threads is None:
            os.environ["FACELABEL_RUNTIME_THREADS"] = str(threads)
    port = settings.metrics_port if metrics_port is None else metrics_port
    if port:  # a fresh folder where the worker's processes add up their metrics (worker/metrics.py)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="facelabel-metrics-")
    from facelabel.settings import get_settings

    get_settings.cache_clear()
    from worker.celery_app import app

    if port:
        from worker.metrics import serve

        serve(port)
    try:
        app.worker_main(
            ["worker", "-Q", queues, "--concurrency", str(concurrency), "--loglevel", loglevel, *celery_args]
        )
    finally:
        if lease is not None:
            lease.release()


MAX_DEFAULT_PROCESSES = 8  # each holds database connections (PostgreSQL allows 100 by default)


def default_processes(settings, queues: str, cpus: int) -> tuple[int, int]:
    """(worker processes, LiteRT threads each) without ``--concurrency``: one process where the
    model runs on Keras (it spreads a batch over the CPUs or a GPU itself, and each process would
    hold its own TensorFlow) or for a trainer; on LiteRT a process per CPU (at most
    MAX_DEFAULT_PROCESSES, sharing the CPUs' threads), so that one process's reading, detection
    and SQL overlap the others' forward passes (bench/worker_processes.py)."""
    from facelabel.vision.classifier import runtime_for

    labels = "label" in queues.split(",")  # worker.celery_app.LABEL_QUEUE
    if not labels or runtime_for(settings.runtime) != "litert":
        return 1, cpus
    processes = min(cpus, MAX_DEFAULT_PROCESSES)
    return processes, cpus // processes


@click.command()
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.pass_obj
def beat(settings, loglevel):
    """The Celery beat scheduler (one per deployment): sends retraining runs to queue
    ``train`` and rescans of URL prefixes to queue ``label`` as the schedules in the
    database say (`facelabel retrain schedule`, `facelabel rescan schedule`), and
    every few seconds sends again the chunks a dead worker or a lost broker dropped."""
    os.environ["FACELABEL_DB_URL"] = settings.db_url
    from facelabel.settings import get_settings

    get_settings.cache_clear()
    from worker.celery_app import app

    app.start(["beat", "--loglevel", loglevel])


@click.command()
@click.pass_obj
def migrate(settings):
    """Create or upgrade the database schema (also done on first use)."""
    sessions_for(settings)
    click.echo("database is at the latest schema")


COMMANDS = (label, enqueue, worker, beat, migrate)
