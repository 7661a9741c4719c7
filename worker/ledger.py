"""The worker's side of the chunk ledger: claim a chunk, keep the claim alive with a
heartbeat from the process doing the work, and go file by file through a chunk whose
worker died, so that a file which kills the worker gets a failure row and the others are
labelled (at most three deaths: the batch, the file-by-file pass, then the file is named)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
from typing import Callable, Iterator, Sequence

from sqlalchemy.orm import Session, sessionmaker

from db.chunks import beat, claim_chunk, finish_chunk, note_file
from db.jobs import Outcome, record_chunk, recorded_paths
from facelabel.paths import stored_path
from facelabel.storage import StorageUnavailable
from worker.plan import Plan

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 30.0  # a claim without a heartbeat this long: its worker is gone
DIED_ON_IT = "the worker died while reading or decoding this file"


@dataclasses.dataclass(frozen=True)
class Claim:
    chunk_id: int
    attempts: int = 0
    current: str | None = None  # the file a file-by-file pass was on when its worker died
    done: bool = False  # finished by another delivery: nothing to do

    @property
    def careful(self) -> bool:
        """An earlier claim's worker died: go file by file."""
        return self.attempts >= 2


@contextlib.contextmanager
def claimed(sessions: sessionmaker[Session], chunk_id: int | None) -> Iterator[Claim | None]:
    """Claim the chunk (None without one) and beat for it until the block ends."""
    if chunk_id is None:
        yield None
        return
    with sessions.begin() as session:
        chunk = claim_chunk(session, chunk_id, f"{socket.gethostname()}:{os.getpid()}")
        claim = Claim(chunk_id, chunk.attempts, chunk.current) if chunk else Claim(chunk_id, done=True)
    if claim.done:
        yield claim
        return
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(sessions, chunk_id, stop), name="heartbeat", daemon=True)
    thread.start()
    try:
        yield claim
    finally:
        stop.set()
        thread.join()


def _beat(sessions: sessionmaker[Session], chunk_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with sessions.begin() as session:
                beat(session, chunk_id)
        except Exception:  # the database is away: try again next round
            log.warning("chunk %d: heartbeat failed", chunk_id, exc_info=True)


def file_by_file(
    sessions: sessionmaker[Session],
    plan: Plan,
    claim: Claim,
    paths: Sequence[str],
    label: Callable[[sessionmaker[Session], Plan, Sequence[str]], list[Outcome]],
) -> list[Outcome]:
    """Label and store the chunk's files one at a time, each committed, noting in the ledger
    which file is in hand; the file an earlier pass died on gets a failure row instead."""
    with sessions() as session:
        stored = recorded_paths(session, plan.job_id, paths)
    outcomes = []
    for path in paths:
        if path in stored:
            continue
        if stored_path(path) == claim.current:
            log.error("chunk %d: %s killed a worker; recorded as failed", claim.chunk_id, stored_path(path))
            outcome = Outcome(path=path, reason=DIED_ON_IT)
        else:
            with sessions.begin() as session:
                note_file(session, claim.chunk_id, stored_path(path))
            try:
                (outcome,) = label(sessions, plan, [path])
            except StorageUnavailable:  # the store failed, not this file: blame none next time
                with sessions.begin() as session:
                    beat(session, claim.chunk_id, current=None)
                raise
        with sessions.begin() as session:
            record_chunk(session, plan.job_id, plan.version.id, plan.detector, [outcome])
        outcomes.append(outcome)
    with sessions.begin() as session:
        finish_chunk(session, claim.chunk_id)
    return outcomes
