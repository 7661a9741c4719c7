"""The database layer on SQLite and PostgreSQL: schema, idempotent writes, queries."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from db import queries
from db.engine import make_engine, open_database
from db.jobs import Face, Outcome, add_files, create_job, finish_if_done, mark_scanned, record_chunk
from db.models import Base, File, Image, JobItem, ModelVersion, Result


def test_migrations_build_exactly_the_models(db_url):
    open_database(db_url)
    with make_engine(db_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def make_version(session, name="m1", thresholds=None):
    version = ModelVersion(
        name=name, path="/models/" + name, sha256="0" * 64, backbone="mobilenet", input_size=160,
        thresholds=thresholds or dict.fromkeys(("eyeglasses", "beard", "mustache", "hat"), 0.5),
        metrics={}, meta={},
    )
    session.add(version)
    session.flush()
    return version


def face(probabilities, box=(0, 0, 10, 10)):
    return Face(box=box, probabilities=probabilities, labels=tuple(p >= 0.5 for p in probabilities))


def image_outcome(path, digest, *faces):
    return Outcome(path=path, sha256=digest, size_bytes=100, width=10, height=10, faces=tuple(faces))


@pytest.fixture
def sessions(db_url):
    return open_database(db_url)


def new_job(sessions, paths, name="m1"):
    with sessions.begin() as session:
        version = session.scalar(select(ModelVersion).where(ModelVersion.name == name)) or make_version(session, name)
        job = create_job(session, roots=["/p"], options={"aligned": True}, model_version_id=version.id)
        add_files(session, job.id, paths)
        return job.id, version.id


def test_a_redelivered_chunk_writes_no_duplicates(sessions):
    job_id, version_id = new_job(sessions, ["/p/a.jpg", "/p/b.jpg", "/p/c.jpg"])
    outcomes = [
        image_outcome("/p/a.jpg", "a" * 64, face((0.9, 0.1, 0.1, 0.1))),
        image_outcome("/p/b.jpg", "b" * 64, face((0.1, 0.8, 0.7, 0.1))),
        Outcome(path="/p/c.jpg", reason="empty file (0 bytes)"),
    ]
    for _ in range(2):
        with sessions.begin() as session:
            record_chunk(session, job_id, version_id, outcomes)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Result)) == 2
        assert session.scalar(select(func.count()).select_from(Image)) == 2
        counts = queries.job_counts(session, job_id)
    assert (counts.images, counts.done, counts.failed, counts.pending, counts.faces) == (3, 2, 1, 0, 2)


def test_job_completes_only_when_scanned_and_nothing_pending(sessions):
    job_id, version_id = new_job(sessions, ["/p/a.jpg", "/p/b.jpg"])
    with sessions.begin() as session:
        record_chunk(session, job_id, version_id, [image_outcome("/p/a.jpg", "a" * 64, face((0.1,) * 4))])
    with sessions.begin() as session:
        assert not finish_if_done(session, job_id)  # not scanned yet
        mark_scanned(session, job_id, skipped=0)
    with sessions.begin() as session:
        assert not finish_if_done(session, job_id)  # b is pending
        record_chunk(session, job_id, version_id, [Outcome(path="/p/b.jpg", reason="file not found")])
    with sessions.begin() as session:
        assert finish_if_done(session, job_id)
    with sessions.begin() as session:
        assert not finish_if_done(session, job_id)  # once


@pytest.fixture
def labelled(sessions):
    paths = ["/p/holiday/a.jpg", "/p/holiday/b.jpg", "/p/work/c.jpg", "/p/work/d_1.jpg"]
    job_id, version_id = new_job(sessions, paths)
    with sessions.begin() as session:
        record_chunk(
            session,
            job_id,
            version_id,
            [
                image_outcome(paths[0], "a" * 64, face((0.95, 0.1, 0.1, 0.7), (0, 0, 50, 50)), face((0.2, 0.9, 0.6, 0.1), (60, 0, 20, 20))),
                image_outcome(paths[1], "b" * 64, face((0.1, 0.1, 0.1, 0.1))),
                image_outcome(paths[2], "c" * 64, face((0.6, 0.9, 0.1, 0.1))),
                image_outcome(paths[3], "d" * 64, face((0.1, 0.3, 0.1, 0.9))),
            ],
        )
        mark_scanned(session, job_id, skipped=3)
    return job_id


def faces(sessions, **filters):
    with sessions() as session:
        return [(r["path"].rsplit("/", 1)[1], r["face"]) for r in queries.query_faces(session, **filters)]


def test_query_filters(sessions, labelled):
    assert faces(sessions) == [("a.jpg", 0), ("a.jpg", 1), ("b.jpg", 0), ("c.jpg", 0), ("d_1.jpg", 0)]
    assert faces(sessions, has=["eyeglasses"]) == [("a.jpg", 0), ("c.jpg", 0)]
    assert faces(sessions, has=["eyeglasses"], lacks=["hat"]) == [("c.jpg", 0)]
    assert faces(sessions, has=["beard", "mustache"]) == [("a.jpg", 1)]
    assert faces(sessions, has=["eyeglasses"], min_prob=0.9) == [("a.jpg", 0)]
    assert faces(sessions, min_prob=0.9) == [("a.jpg", 0), ("a.jpg", 1), ("c.jpg", 0), ("d_1.jpg", 0)]
    assert faces(sessions, path_glob="*/holiday/*") == [("a.jpg", 0), ("a.jpg", 1), ("b.jpg", 0)]
    assert faces(sessions, path_glob="/p/work/d_?.jpg") == [("d_1.jpg", 0)]
    assert faces(sessions, path_glob="/p/work/d%") == []  # % and _ are literal, not LIKE wildcards
    assert faces(sessions, path_glob="*/HOLIDAY/*") == []  # case-sensitive on both databases
    assert faces(sessions, limit=2) == [("a.jpg", 0), ("a.jpg", 1)]
    assert faces(sessions, job_id=labelled + 1) == []


def test_query_rows_carry_the_contract_columns(sessions, labelled):
    with sessions() as session:
        row = next(queries.query_faces(session, has=["hat"]))
    assert tuple(row) == queries.FACE_COLUMNS
    assert (row["box_w"], row["hat"], row["eyeglasses"], row["p_eyeglasses"], row["model_version"]) == (50, 1, 1, 0.95, "m1")


def test_query_shows_the_newest_model_per_image(sessions, labelled):
    job_id, version_id = new_job(sessions, ["/p/holiday/b.jpg"], name="m2")
    with sessions.begin() as session:
        record_chunk(session, job_id, version_id, [image_outcome("/p/holiday/b.jpg", "b" * 64, face((0.99, 0.1, 0.1, 0.1)))])
    with sessions() as session:
        rows = {(r["path"], r["face"]): r["model_version"] for r in queries.query_faces(session)}
        assert rows[("/p/holiday/b.jpg", 0)] == "m2" and rows[("/p/work/c.jpg", 0)] == "m1"
        assert len(rows) == 5
        job_rows = list(queries.query_faces(session, job_id=labelled))
        assert {r["model_version"] for r in job_rows} == {"m1"} and len(job_rows) == 5


def test_stats(sessions, labelled):
    with sessions() as session:
        assert queries.stats(session) == {
            "images": 4, "faces": 5, "eyeglasses": 2, "beard": 2, "mustache": 1, "hat": 2, "failures": 0, "skipped": 3,
        }


def test_a_path_listed_twice_in_a_job_counts_once(sessions):
    job_id, _ = new_job(sessions, ["/p/a.jpg", "/p/a.jpg"])
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(JobItem)) == 1
        assert session.scalar(select(func.count()).select_from(File)) == 1
