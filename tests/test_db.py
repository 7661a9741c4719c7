"""The database layer on SQLite and PostgreSQL: schema, idempotent writes, queries."""

from __future__ import annotations

import dataclasses

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from db import queries
from db.engine import MIGRATIONS_DIR, SCHEMA_REVISION, make_engine, open_database
from db.jobs import Face, Outcome, create_job, mark_scanned, record_chunk
from db.models import Base, File, Image, Job, ModelVersion, Result
from facelabel.rows import EXPORT_COLUMNS


def test_migrations_build_exactly_the_models(db_url):
    open_database(db_url)
    with make_engine(db_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_processes_creating_a_new_database_at_once_all_succeed(db_url):
    """Six `facelabel migrate` at once on an empty database: one migrates, the others wait and
    find the schema current (SQLite used to fail with 'table … already exists')."""
    import subprocess
    import sys

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "facelabel", "--db", db_url, "migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, outputs
    with make_engine(db_url).connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == SCHEMA_REVISION


def test_schema_revision_constant_is_the_alembic_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def make_version(session, name):
    version = ModelVersion(
        name=name,
        path="/models/" + name,
        sha256="0" * 64,
        backbone="mobilenet",
        input_size=160,
        thresholds=dict.fromkeys(("eyeglasses", "beard", "mustache", "hat"), 0.5),
        metrics={},
        meta={},
    )
    session.add(version)
    session.flush()
    return version


def face(probabilities, box=(0, 0, 10, 10)):
    return Face(box=box, probabilities=probabilities, labels=tuple(p >= 0.5 for p in probabilities))


def image_outcome(path, digest, *faces):
    return Outcome(path=path, sha256=digest, size_bytes=100, width=10, height=10, faces=tuple(faces))


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    """A fresh SQLite file, or PostgreSQL inside a transaction rolled back after the test."""
    if request.param == "sqlite":
        return open_database(f"sqlite:///{tmp_path / 'facelabel.db'}")
    return request.getfixturevalue("pg_rolled_back")


def new_job(sessions, name="m1"):
    with sessions.begin() as session:
        version = session.scalar(select(ModelVersion).where(ModelVersion.name == name)) or make_version(
            session, name
        )
        job = create_job(session, roots=["/p"], options={"aligned": True}, model_version_id=version.id)
        return job.id, version.id


def record(sessions, job_id, version_id, outcomes):
    with sessions.begin() as session:
        record_chunk(session, job_id, version_id, "yunet", outcomes)


def job_state(sessions, job_id):
    with sessions() as session:
        job = session.get(Job, job_id)
        return job.status, job.finished, job.finished_at is not None


def test_a_redelivered_chunk_writes_and_counts_nothing_twice(sessions):
    job_id, version_id = new_job(sessions)
    outcomes = [
        image_outcome("/p/a.jpg", "a" * 64, face((0.9, 0.1, 0.1, 0.1))),
        image_outcome("/p/b.jpg", "b" * 64, face((0.1, 0.8, 0.7, 0.1))),
        Outcome(path="/p/c.jpg", reason="empty file (0 bytes)"),
    ]
    record(sessions, job_id, version_id, outcomes)
    record(sessions, job_id, version_id, outcomes)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Result)) == 2
        assert session.scalar(select(func.count()).select_from(Image)) == 2
        assert session.scalar(select(func.count()).select_from(File)) == 3
        counts = queries.job_counts(session, job_id)
    assert (counts.images, counts.done, counts.failed, counts.faces) == (None, 2, 1, 2)
    assert job_state(sessions, job_id) == ("scanning", 3, False)


def test_job_completes_when_outcomes_reach_the_scanned_count_in_either_order(sessions):
    job_id, version_id = new_job(sessions)
    record(sessions, job_id, version_id, [image_outcome("/p/a.jpg", "a" * 64, face((0.1,) * 4))])
    with sessions.begin() as session:
        mark_scanned(session, job_id, images=2, skipped=0)
    assert job_state(sessions, job_id) == ("running", 1, False)
    record(sessions, job_id, version_id, [Outcome(path="/p/b.jpg", reason="file not found")])
    assert job_state(sessions, job_id) == ("complete", 2, True)

    late_scan, _ = new_job(sessions)  # every chunk done before the scan reports its total
    record(sessions, late_scan, version_id, [image_outcome("/p/a.jpg", "a" * 64, face((0.1,) * 4))])
    with sessions.begin() as session:
        mark_scanned(session, late_scan, images=1, skipped=4)
    assert job_state(sessions, late_scan) == ("complete", 1, True)


def test_changed_content_at_a_path_points_the_file_at_the_new_image(sessions):
    job_id, version_id = new_job(sessions)
    record(sessions, job_id, version_id, [image_outcome("/p/a.jpg", "a" * 64, face((0.9,) * 4))])
    second, _ = new_job(sessions)
    record(sessions, second, version_id, [image_outcome("/p/a.jpg", "e" * 64, face((0.1,) * 4))])
    with sessions() as session:
        rows = list(queries.query_faces(session))
    assert [(r["path"], r["p_hat"]) for r in rows] == [("/p/a.jpg", 0.1)]


@pytest.fixture
def labelled(sessions):
    paths = ["/p/holiday/a.jpg", "/p/holiday/b.jpg", "/p/work/c.jpg", "/p/work/d_1.jpg"]
    job_id, version_id = new_job(sessions)
    record(
        sessions,
        job_id,
        version_id,
        [
            image_outcome(
                paths[0],
                "a" * 64,
                face((0.95, 0.1, 0.1, 0.7), (0, 0, 50, 50)),
                face((0.2, 0.9, 0.6, 0.1), (60, 0, 20, 20)),
            ),
            dataclasses.replace(image_outcome(paths[1], "b" * 64, face((0.1, 0.1, 0.1, 0.1))), dropped=2),
            image_outcome(paths[2], "c" * 64, face((0.6, 0.9, 0.1, 0.1))),
            image_outcome(paths[3], "d" * 64, face((0.1, 0.3, 0.1, 0.9))),
            Outcome(path="/p/work/broken.jpg", reason="not an image: the file holds text"),
            Outcome(path="/p/work/empty room.jpg", reason="no face found (1 too small or unsure)"),
        ],
    )
    with sessions.begin() as session:
        mark_scanned(session, job_id, images=6, skipped=3)
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
    assert tuple(row) == (*EXPORT_COLUMNS, "result_id")  # the contract's order, then what export adds
    assert (row["box_w"], row["hat"], row["eyeglasses"], row["p_eyeglasses"], row["model_version"]) == (
        50,
        1,
        1,
        0.95,
        "m1",
    )


def test_query_shows_the_newest_model_per_image_unless_asked_for_another(sessions, labelled):
    job_id, version_id = new_job(sessions, name="m2")
    record(
        sessions,
        job_id,
        version_id,
        [image_outcome("/p/holiday/b.jpg", "b" * 64, face((0.99, 0.1, 0.1, 0.1)))],
    )
    with sessions() as session:
        rows = {(r["path"], r["face"]): r["model_version"] for r in queries.query_faces(session)}
        assert rows[("/p/holiday/b.jpg", 0)] == "m2" and rows[("/p/work/c.jpg", 0)] == "m1"
        assert len(rows) == 5
        job_rows = {
            (r["path"], r["face"]): r["model_version"] for r in queries.query_faces(session, job_id=labelled)
        }
        assert job_rows == rows  # the job's files, as their newest version saw them
        m1 = session.scalar(select(ModelVersion.id).where(ModelVersion.name == "m1"))
        old = list(queries.query_faces(session, model_version_id=m1))
        assert {r["model_version"] for r in old} == {"m1"} and len(old) == 5
        assert queries.stats(session)["eyeglasses"] == 3


def test_stats(sessions, labelled):
    expected = {
        "images": 4,
        "faces": 5,
        "eyeglasses": 2,
        "beard": 2,
        "mustache": 1,
        "hat": 2,
        "no_face": 1,
        "dropped_faces": 2,
        "failures": 2,
        "skipped": 3,
    }
    with sessions() as session:
        assert queries.stats(session) == expected
        assert queries.stats(session, labelled) == expected
        assert queries.stats(session, labelled + 1)["faces"] == 0


def test_jobs_listing_and_detail(sessions, labelled):
    with sessions() as session:
        [row] = list(queries.list_jobs(session))
        detail = queries.get_job(session, labelled)
        reasons = [f["reason"] for f in queries.failures(session, labelled)]
    counts = (row["status"], row["images"], row["done"], row["failed"], row["faces"], row["skipped"])
    assert counts == ("complete", 6, 4, 2, 5, 3)
    assert detail["pending"] == 0 and detail["finished"] is not None
    assert reasons == ["not an image: the file holds text", "no face found (1 too small or unsure)"]


def test_writers_of_two_versions_at_once_leave_one_current_set(pg_url):
    """Workers on different model versions saving the same images at the same moment: every
    image ends with exactly one version's rows current (query and stats show no duplicates)."""
    import threading

    sessions = open_database(pg_url)
    writers = [new_job(sessions, "m1"), new_job(sessions, "m2")]

    def write(barrier, job_id, version_id, outcome):
        barrier.wait()
        record(sessions, job_id, version_id, [outcome])

    for round_ in range(40):
        outcome = image_outcome(f"/p/{round_}.jpg", f"{round_:064x}", face((0.9,) * 4), face((0.2,) * 4))
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=write, args=(barrier, *w, outcome)) for w in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with sessions() as session:
        current = session.execute(
            select(Result.image_id, func.count(func.distinct(Result.model_version_id)))
            .where(Result.is_current.is_(True))
            .group_by(Result.image_id)
        ).all()
    assert len(current) == 40 and all(versions == 1 for _, versions in current)


def test_two_retraining_claims_at_once_queue_one_run(db_url, monkeypatch):
    """The second claim checked before the first one's run was stored: the index refuses its
    run and it says which run is queued, instead of queueing a duplicate."""
    from db import training_runs

    sessions = open_database(db_url)
    with sessions.begin() as session:
        first = training_runs.claim_run(session, "cli", trainer_alive=lambda: True).id
    stale = [False, True]  # the second claim's check ran before the first run was stored
    real = training_runs.active_run
    monkeypatch.setattr(training_runs, "active_run", lambda session: None if stale.pop() else real(session))
    with sessions.begin() as session:
        with pytest.raises(training_runs.RunBusy, match=f"training run {first} is already queued"):
            training_runs.claim_run(session, "schedule 1", trainer_alive=lambda: True)
    with sessions() as session:
        assert [r["id"] for r in training_runs.list_runs(session)] == [first]
