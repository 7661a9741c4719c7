"""Reading results back: ``query``, ``export``, ``stats``, ``jobs``, ``job``, ``failures``,
``report``.

None of these import TensorFlow."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from db import queries
from db.models import ATTRIBUTES
from facelabel.cli.common import check_job, job_option, out_path, sessions_for
from facelabel.cli.output import emit_mapping, emit_rows, format_option, shown
from facelabel.destination import open_file
from facelabel.exports import FORMATS, write
from facelabel.rows import QUERY_COLUMNS
from facelabel.xmp import write_beside

JOB_COLUMNS = (
    "id",
    "status",
    "created",
    "images",
    "done",
    "failed",
    "skipped",
    "faces",
    "model_version",
    "roots",
)


FILTERS = (
    click.option("--has", multiple=True, type=click.Choice(ATTRIBUTES), help="Face shows this (repeatable)."),
    click.option(
        "--not",
        "lacks",
        multiple=True,
        type=click.Choice(ATTRIBUTES),
        help="Face does not show this (repeatable).",
    ),
    job_option("Only faces of images in this job."),
    click.option(
        "--path", "path_glob", metavar="GLOB", help="Absolute path matches GLOB (* also matches /)."
    ),
    click.option(
        "--min-prob",
        type=click.FloatRange(0, 1),
        metavar="P",
        help="Each --has attribute has probability >= P (without --has: any attribute does).",
    ),
    click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N rows."),
    click.option(
        "--model-version",
        metavar="NAME",
        help="Results of this model version (default: each image's newest).",
    ),
)


def face_filters(command):
    """The options that choose faces, shared by ``query`` and ``export``."""
    for option in reversed(FILTERS):
        command = option(command)
    return command


def filtered_faces(session, *, has, lacks, job_id, path_glob, min_prob, limit, model_version):
    """The faces the filter options choose (``query``'s rows), streamed."""
    from db.models import ModelVersion

    both = set(has) & set(lacks)
    if both:
        raise click.UsageError(f"--has and --not both name {', '.join(sorted(both))}")
    version_id = None
    if model_version is not None:
        version_id = session.scalar(select(ModelVersion.id).where(ModelVersion.name == model_version))
        if version_id is None:
            raise click.ClickException(f"no model version {model_version!r} (see `facelabel models list`)")
    return queries.query_faces(
        session,
        has=has,
        lacks=lacks,
        job_id=job_id,
        path_glob=path_glob,
        min_prob=min_prob,
        limit=limit,
        model_version_id=version_id,
    )


@click.command()
@face_filters
@format_option()
@click.pass_obj
def query(settings, fmt, **filters):
    """One row per face, ordered by path and face (0 = largest). Human corrections replace
    the model's labels (the table marks them in ``corrected``).

    \b
    facelabel query --has eyeglasses --not hat --format csv
    facelabel query --path '*/holiday/*' --min-prob 0.9 --has beard
    """
    sessions = sessions_for(settings)
    check_job(sessions, filters["job_id"])
    with sessions() as session:
        rows = _CorrectionCounter(filtered_faces(session, **filters))
        columns = QUERY_COLUMNS + ("corrected",) if fmt == "table" else QUERY_COLUMNS
        emit_rows(rows, columns, fmt)
    if rows.corrected and fmt != "table":
        click.echo(f"{rows.corrected} faces show human corrections instead of the model's labels", err=True)


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@face_filters
@click.option("--out", type=click.Path(), help="File to write (for xmp: a folder, created if missing).")
@click.option(
    "--beside",
    is_flag=True,
    help="xmp only: PHOTO.xmp next to each photo instead of --out, where it has no sidecar yet.",
)
@click.pass_obj
def export(settings, fmt, out, beside, **filters):
    """Write the chosen faces as Parquet, CSV, JSON lines or COCO (the ``query`` columns plus
    job, detector, detection confidence, corrected attributes and image size), or as XMP
    sidecars: an MWG face region per face (the attributes in its description, no person's
    name) and ``facelabel|<attribute>`` keywords.

    XMP goes under --out, one ``.xmp`` per photo mirroring the photos' tree, or with --beside
    next to each photo as ``PHOTO.xmp`` (``IMG_1.jpg.xmp``: the name digiKam, darktable and
    Immich read), skipping photos that have ``IMG_1.jpg.xmp`` or ``IMG_1.xmp`` already (an
    existing file is never replaced). Lightroom reads no sidecar for JPEG, PNG or TIFF.

    \b
    facelabel export --format parquet --job 3 --out faces.parquet
    facelabel export --format coco --has hat --out hats.json
    facelabel export --format xmp --job 3 --out sidecars/
    facelabel export --format xmp --job 3 --beside
    """
    destination = _export_destination(fmt, out, beside)
    sessions = sessions_for(settings)
    check_job(sessions, filters["job_id"])
    with sessions() as session:
        faces = filtered_faces(session, **filters)
        if beside:
            done = write_beside(faces, lambda path, reason: click.echo(f"{shown(path)}: {reason}", err=True))
            click.echo(
                f"{done.faces} faces; sidecars: {done.written} written beside their photos, "
                f"{done.skipped} skipped (one was there), {done.failed} failed",
                err=True,
            )
            return
        count = write(faces, fmt, destination)
    click.echo(f"{count} faces written to {out}", err=True)


def _export_destination(fmt: str, out: str | None, beside: bool) -> Path | None:
    """--out checked (or --beside), before any row is read."""
    if beside:
        if fmt != "xmp":
            raise click.UsageError("--beside writes XMP sidecars: use it with --format xmp")
        if out is not None:
            raise click.UsageError("--beside writes next to the photos: give it without --out")
        return None
    if out is None:
        raise click.UsageError("Missing option '--out' (or --beside, for xmp)")
    return out_path(out, folder=fmt == "xmp")


class _CorrectionCounter:
    """Passes rows through, counting those with human corrections."""

    def __init__(self, rows):
        self.rows, self.corrected = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.corrected += bool(row["corrected"])
            yield row


@click.command()
@job_option()
@format_option()
@click.pass_obj
def stats(settings, job_id, fmt):
    """Counts: images, faces, faces per attribute, failures, skipped files.

    \b
    facelabel stats --job 3
    """
    sessions = sessions_for(settings)
    check_job(sessions, job_id)
    with sessions() as session:
        emit_mapping(queries.stats(session, job_id), fmt)


@click.command()
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the newest N jobs.")
@format_option()
@click.pass_obj
def jobs(settings, limit, fmt):
    """Jobs, newest first, with progress counts."""
    with sessions_for(settings)() as session:
        emit_rows(queries.list_jobs(session, limit), JOB_COLUMNS, fmt)


@click.command()
@click.argument("job_id", type=int, metavar="ID")
@click.option("--resume", is_flag=True, help="Send the job's unfinished chunks to the workers again.")
@format_option()
@click.pass_obj
def job(settings, job_id, resume, fmt):
    """One job in detail; --resume sends its unfinished chunks again (a lost worker or
    broker; beat also does this by itself within a minute).

    \b
    facelabel job 7 --resume
    """
    with sessions_for(settings)() as session:
        row = queries.get_job(session, job_id)
    if row is None:
        raise click.ClickException(f"no job {job_id}")
    if resume:
        from worker.celery_app import app
        from worker.reconciler import resume_job

        sent = resume_job(app, settings, job_id)
        click.echo(f"job {job_id}: {sent} unfinished chunks sent again", err=True)
    emit_mapping(row, fmt)


@click.command()
@job_option()
@format_option()
@click.pass_obj
def failures(settings, job_id, fmt):
    """Files that could not be labelled, with the reason.

    \b
    facelabel failures --job 3 --format csv
    """
    sessions = sessions_for(settings)
    check_job(sessions, job_id)
    with sessions() as session:
        emit_rows(queries.failures(session, job_id), ("path", "reason", "job"), fmt)


@click.command()
@click.option("--job", "job_id", type=int, metavar="ID", required=True, help="The job to show.")
@click.option("--out", type=click.Path(), required=True, help="HTML file to write.")
@click.pass_obj
def report(settings, job_id, out):
    """A self-contained HTML contact sheet of a job: faces by attribute, failures, counts.

    \b
    facelabel report --job 3 --out report.html
    """
    from db.models import Job
    from facelabel.report import Limits, render

    destination = out_path(out)
    sessions = sessions_for(settings)
    check_job(sessions, job_id)
    with sessions() as session:
        roots = list(session.get(Job, job_id).roots)
        page = render(
            title=f"facelabel job {job_id}",
            stats=queries.stats(session, job_id),
            faces=queries.query_faces(session, job_id=job_id),
            failures=queries.failures(session, job_id),
            limits=Limits(roots, settings.max_file_bytes, settings.max_image_pixels),
        )
    with open_file(destination, "w") as handle:
        handle.write(page)
    click.echo(f"wrote {out}")


COMMANDS = (query, export, stats, jobs, job, failures, report)
