"""The chunk ledger: every chunk is in SQL before it is sent, a chunk a dead worker held is
sent again, and a file that kills workers ends as a failure row while the rest are labelled."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.chunks import claim_chunk, lost_chunks
from db.engine import open_database
from db.models import Chunk, Job, JobItem
from facelabel.cli import main
from facelabel.settings import Settings
from tests import images
from worker.labeling import label_chunk
from worker.ledger import DIED_ON_IT
from worker.submit import submit_job


def _queue_job(db_url, folder, chunk_size=2):
    """A job over ``folder`` whose chunks are recorded and 'sent' nowhere (a lost broker)."""
    settings = Settings(db_url=db_url, chunk_size=chunk_size)
    sent = []
    sessions = open_database(db_url)
    job_id, counts = submit_job(
        sessions,
        [folder],
        settings=settings,
        aligned=True,
        batch_size=8,
        model=None,
        send=lambda job, paths, chunk: sent.append((chunk, paths)),
    )
    return sessions, settings, job_id, sent


def test_every_chunk_is_in_the_ledger_before_it_is_sent(tmp_path, db_url):
    images.folder_of_images(tmp_path / "photos", 5)
    sessions, _, job_id, sent = _queue_job(db_url, str(tmp_path / "photos"))
    with sessions() as session:
        chunks = session.scalars(select(Chunk).where(Chunk.job_id == job_id).order_by(Chunk.number)).all()
        assert [(c.id, c.paths) for c in chunks] == sent
        assert [c.number for c in chunks] == [0, 1, 2] and {c.status for c in chunks} == {"queued"}


def test_chunks_a_dead_worker_held_or_a_restarted_broker_lost_are_found(tmp_path, db_url):
    images.folder_of_images(tmp_path / "photos", 6)
    sessions, _, _, sent = _queue_job(db_url, str(tmp_path / "photos"))
    (dead, _), (alive, _), (waiting, _) = sent
    with sessions.begin() as session:
        claim_chunk(session, dead, "w1:1")
        claim_chunk(session, alive, "w2:2")
        session.get(Chunk, dead).heartbeat_at -= dt.timedelta(seconds=60)  # its worker stopped
        session.get(Chunk, waiting).sent_at -= dt.timedelta(seconds=60)
    with sessions() as session:  # looked at, not committed
        assert [c[0] for c in lost_chunks(session, stale_after=30, queue_empty=False)] == [dead]
    with sessions.begin() as session:  # the broker lost everything: the queued one too
        assert [c[0] for c in lost_chunks(session, stale_after=30, queue_empty=True)] == [dead, waiting]
    with sessions() as session:  # both sent again just now: not lost any more
        assert lost_chunks(session, stale_after=30, queue_empty=True) == []


def test_a_file_that_killed_workers_gets_a_failure_row_and_the_rest_are_labelled(tmp_path, db_url):
    images.folder_of_images(tmp_path / "photos", 3)
    sessions, settings, job_id, sent = _queue_job(db_url, str(tmp_path / "photos"), chunk_size=3)
    ((chunk_id, paths),) = sent
    with sessions.begin() as session:  # the batch attempt died, then the file-by-file pass on paths[1]
        claim_chunk(session, chunk_id, "w1:1")
        chunk = claim_chunk(session, chunk_id, "w1:2")
        chunk.current = paths[1]
    summary = label_chunk(sessions, job_id, paths, settings=settings, chunk_id=chunk_id)
    assert (summary.done, summary.failed) == (2, 1)
    with sessions() as session:
        assert session.get(Chunk, chunk_id).status == "done"
        assert session.get(Job, job_id).status == "complete"
        reasons = session.scalars(select(JobItem.reason).where(JobItem.job_id == job_id)).all()
        assert sorted(reasons, key=str) == [None, None, DIED_ON_IT]
    again = label_chunk(sessions, job_id, paths, settings=settings, chunk_id=chunk_id)  # redelivered
    assert (again.done, again.failed) == (0, 0)


@pytest.mark.slow
def test_job_resume_sends_the_unfinished_chunks_again(tmp_path, sqlite_url, redis_url, monkeypatch):
    import redis

    images.folder_of_images(tmp_path / "photos", 5)
    _queue_job(sqlite_url, str(tmp_path / "photos"))
    monkeypatch.setenv("FACELABEL_BROKER_URL", redis_url)
    from facelabel.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["--db", sqlite_url, "job", "1", "--resume", "--format", "json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "job 1: 3 unfinished chunks sent again" in result.stderr
    assert json.loads(result.stdout)[0]["chunks"] == 3
    assert redis.Redis.from_url(redis_url).llen("label") == 3


def test_a_job_whose_sending_stops_is_marked_interrupted(tmp_path, sqlite_url):
    images.folder_of_images(tmp_path / "photos", 5)
    sessions = open_database(sqlite_url)

    def send(job_id, paths, chunk_id):
        raise ConnectionError("the broker went away")

    with pytest.raises(ConnectionError):
        submit_job(
            sessions,
            [str(tmp_path / "photos")],
            settings=Settings(db_url=sqlite_url, chunk_size=2),
            aligned=True,
            batch_size=8,
            model=None,
            send=send,
        )
    with sessions() as session:
        job = session.scalars(select(Job)).one()
        assert job.status == "interrupted" and job.finished_at is not None
