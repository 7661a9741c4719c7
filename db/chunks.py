"""The chunk ledger's queries: record, claim, beat, finish, and find what was lost."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from db.models import Chunk
from facelabel.clock import utcnow


def add_chunks(session: Session, job_id: int, first: int, chunks: Sequence[list[str]]) -> list[int]:
    """Record chunks ``first``, ``first + 1``, … of a job; their ids, in order."""
    rows = [Chunk(job_id=job_id, number=first + i, paths=list(paths)) for i, paths in enumerate(chunks)]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def claim_chunk(session: Session, chunk_id: int, worker: str) -> Chunk | None:
    """Mark the chunk claimed by ``worker`` (one more attempt); None when it is done already
    or unknown (a message of a database that has no ledger row for it)."""
    chunk = session.get(Chunk, chunk_id, with_for_update=True)
    if chunk is None or chunk.status == "done":
        return None
    chunk.status, chunk.claimed_by, chunk.heartbeat_at = "claimed", worker, utcnow()
    chunk.attempts += 1
    return chunk


def beat(session: Session, chunk_id: int, **values) -> None:
    """The claiming worker is alive (``values``: other columns to set with it)."""
    claimed = and_(Chunk.id == chunk_id, Chunk.status == "claimed")
    session.execute(update(Chunk).where(claimed).values(heartbeat_at=utcnow(), **values))


def note_file(session: Session, chunk_id: int, path: str) -> None:
    """A file-by-file pass is now on ``path`` (its stored form): if the worker dies, the next
    pass knows which file to blame."""
    beat(session, chunk_id, current=path)


def finish_chunk(session: Session, chunk_id: int) -> None:
    """Done: in the same transaction as the chunk's results."""
    session.execute(
        update(Chunk).where(Chunk.id == chunk_id).values(status="done", finished_at=utcnow(), current=None)
    )


def lost_chunks(session: Session, *, stale_after: float, queue_empty: bool, now: dt.datetime | None = None):
    """Chunks to send again, marked as sent now: claimed by a worker whose heartbeat stopped
    ``stale_after`` seconds ago, and, when no message waits in the queue (``queue_empty``),
    unclaimed ones sent that long ago (a worker died holding them, or a broker lost them)."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=stale_after)
    dead = and_(Chunk.status == "claimed", Chunk.heartbeat_at < cutoff)
    gone = and_(Chunk.status == "queued", Chunk.sent_at < cutoff)
    condition = or_(dead, gone) if queue_empty else dead
    statement = select(Chunk).where(condition).order_by(Chunk.id).with_for_update(skip_locked=True)
    lost = session.scalars(statement).all()
    for chunk in lost:
        chunk.status, chunk.sent_at = "queued", now
    return [(c.id, c.job_id, list(c.paths)) for c in lost]


def unfinished_chunks(session: Session, job_id: int) -> list[tuple[int, int, list[str]]]:
    """Every chunk of the job not done yet, marked as sent now (``job resume``)."""
    chunks = session.scalars(
        select(Chunk).where(Chunk.job_id == job_id, Chunk.status != "done").order_by(Chunk.number)
    ).all()
    for chunk in chunks:
        chunk.status, chunk.sent_at = "queued", utcnow()
    return [(c.id, c.job_id, list(c.paths)) for c in chunks]
