"""Tables. Results belong to image *content* (sha256), paths point at content: a file
copied to two places is labelled once, and a file whose bytes change gets new results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from facelabel.artifact import ATTRIBUTES  # noqa: F401  (re-exported for queries)
from facelabel.clock import utcnow

NO_DETECTOR = "none"  # results of --aligned jobs: the whole image is the face


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


def _now() -> dt.datetime:
    return utcnow()


class ModelVersion(Base):
    """A model artifact that produced results; its metadata JSON is copied in."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    backbone: Mapped[str] = mapped_column(String(100))
    input_size: Mapped[int] = mapped_column(Integer)
    thresholds: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    meta: Mapped[dict[str, Any]]
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Job(Base):
    """One `label` or `enqueue` run over some roots."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="scanning")
    roots: Mapped[list[Any]]
    options: Mapped[dict[str, Any]]
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    images: Mapped[int | None] = mapped_column(Integer)  # set when the scan ends
    finished: Mapped[int] = mapped_column(Integer, default=0)  # items done or failed
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    scanned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Chunk(Base):
    """One message's worth of a job's paths, recorded before it is sent: Redis carries the
    work, this table keeps it. A worker claims it (with a heartbeat) and marks it done in the
    transaction that stores its results; the reconciler re-sends what a dead worker or a
    restarted broker lost."""

    __tablename__ = "chunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    number: Mapped[int] = mapped_column(Integer)
    paths: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued claimed done
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    current: Mapped[str | None] = mapped_column(Text)  # the file a careful retry is on
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("job_id", "number", name="uq_chunks_job_number"),
        Index("ix_chunks_status", "status"),
    )


class Image(Base):
    """Decoded image content, identified by the sha256 of its bytes."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)


class File(Base):
    """An absolute path and the content it held when last read."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)  # shown form (facelabel.paths.stored_path)
    raw_path: Mapped[bytes | None] = mapped_column(LargeBinary)  # the bytes, for names not UTF-8
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"), index=True)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class JobItem(Base):
    """A file's outcome within a job: done (with its face count) or failed (with the reason).

    Written by the worker that labels the file; files not yet reached have no row."""

    __tablename__ = "job_items"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    faces: Mapped[int | None] = mapped_column(Integer)
    dropped_faces: Mapped[int | None] = mapped_column(Integer)  # too small or unsure
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_job_items_job_status", "job_id", "status"),
        Index("ix_job_items_file_finished", "file_id", "finished_at"),  # a path's outcomes (db.files)
    )


class Result(Base):
    """One face of one image as seen by one model version through one face detector: a
    re-run with another detector is another result set."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    detector: Mapped[str] = mapped_column(String(40), default=NO_DETECTOR)  # FACELABEL_DETECTOR
    face: Mapped[int] = mapped_column(Integer)
    box_x: Mapped[int] = mapped_column(Integer)
    box_y: Mapped[int] = mapped_column(Integer)
    box_w: Mapped[int] = mapped_column(Integer)
    box_h: Mapped[int] = mapped_column(Integer)
    p_eyeglasses: Mapped[float] = mapped_column(Float)
    p_beard: Mapped[float] = mapped_column(Float)
    p_mustache: Mapped[float] = mapped_column(Float)
    p_hat: Mapped[float] = mapped_column(Float)
    eyeglasses: Mapped[bool] = mapped_column(Boolean)
    beard: Mapped[bool] = mapped_column(Boolean)
    mustache: Mapped[bool] = mapped_column(Boolean)
    hat: Mapped[bool] = mapped_column(Boolean)
    detection_confidence: Mapped[float | None] = mapped_column(Float)  # None: aligned, not detected
    # True for the rows of the newest model version that labelled this image (of its newest
    # detector's set within that version): what `query` and `stats` show. Kept by
    # record_chunk so reads need no anti-join over all versions.
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("image_id", "model_version_id", "detector", "face", name="uq_results_face"),
    )


class Promotion(Base):
    """Each time a version became the active one (by the gate, a promote or a rollback)."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Schedule(Base):
    """A schedule that beat reads from here (worker/scheduler.py): a retraining, or a rescan
    of URL prefixes (``options``: their URLs and ``aligned``) that submits a job each time."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="retrain", server_default="retrain")  # or rescan
    options: Mapped[dict[str, Any] | None]
    last_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))  # a rescan's latest job
    cron: Mapped[str | None] = mapped_column(String(100))  # five fields, or None with every_seconds
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class TrainingRun(Base):
    """One retraining: its data, the challenger and champion metrics, the gate's decision."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(
        String(20), default="queued"
    )  # queued running promoted rejected failed skipped cancelled
    trigger: Mapped[str] = mapped_column(String(100))  # "cli" or "schedule N"
    challenger_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    champion_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    challenger_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    champion_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decision: Mapped[str | None] = mapped_column(Text)
    corrections: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (  # two claims at once: the second fails (db/training_runs.py)
        Index(
            "uq_training_runs_one_queued",
            "status",
            unique=True,
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
    )


class Correction(Base):
    """A person's label for one attribute of one face; overrides the model's in ``query``
    and becomes a training example in the next retraining."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    face: Mapped[int] = mapped_column(Integer)
    box: Mapped[list[Any]]  # x, y, w, h of the face when corrected: the training crop
    attribute: Mapped[str] = mapped_column(String(20))
    value: Mapped[bool] = mapped_column(Boolean)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    __table_args__ = (UniqueConstraint("image_id", "face", "attribute", name="uq_corrections_face"),)
