"""The statements a worker runs per chunk stay on indexes whatever the table statistics say,
and whatever they were when a long-lived connection first ran them.

After a bulk load PostgreSQL has no statistics until autoanalyze catches up (this machine's
server runs with autovacuum off, so never): it then guesses that an image id matches 0.5 % of
``results``, and a chunk's update of 64 images planned a scan of the whole table, compiled by
JIT for ~200 ms. And a statement the driver prepares may keep one generic plan, made while
the tables were nearly empty, for the connection's life. Here one connection labels chunks
on empty tables, then tens of thousands of rows are loaded in bulk and never analysed, and
every statement of a chunk's path is explained with its own parameters.
"""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from sqlalchemy import event, select, text

from bench.control_plane import add_version, prefill
from db.chunks import add_chunks, beat, claim_chunk, finish_chunk
from db.engine import open_database
from db.files import settled_at
from db.jobs import Face, Outcome, create_job, known_images, record_chunk, recorded_paths
from db.models import Image, Result

WATCHED = {"results", "images", "files", "job_items", "chunks"}


@contextlib.contextmanager
def explained(engine):
    """Collect (statement, plan, the transaction's jit setting) for every statement run on
    ``engine`` in the block, each explained with its parameters just before its transaction
    ends, so what the transaction set for itself applies to its plans."""
    plans, pending = [], []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split(None, 1)[0].upper() in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            many = isinstance(parameters, (list, tuple))  # an executemany: its first row will do
            pending.append((statement, parameters[0] if many else parameters))

    def explain(conn):
        cursor = conn.connection.driver_connection.cursor()  # the driver's: no events, no capture
        jit = cursor.execute("SELECT current_setting('jit')").fetchone()[0]
        for statement, parameters in pending:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plans.append((statement, cursor.fetchone()[0][0], jit))
        pending.clear()

    listeners = [("before_cursor_execute", grab), ("commit", explain), ("rollback", explain)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield plans
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def chunk_outcomes(digests: list[str], tag: str) -> list[Outcome]:
    face = Face(box=(0, 0, 32, 32), probabilities=(0.9, 0.1, 0.1, 0.1), labels=(True, False, False, False))
    return [
        Outcome(path=f"/new/{tag}/{i}.jpg", sha256=d, size_bytes=100, width=32, height=32, faces=(face,))
        for i, d in enumerate(digests)
    ]


def label_like_a_worker(sessions, version_id: int, outcomes: list[Outcome]) -> None:
    """What ``label_chunk`` does in the database for one ledger chunk of ``outcomes``."""
    paths = [o.path for o in outcomes]
    with sessions.begin() as session:
        job_id = create_job(
            session, roots=["/new"], options={"aligned": True}, model_version_id=version_id
        ).id
        (chunk_id,) = add_chunks(session, job_id, 0, [paths])
    with sessions.begin() as session:
        claim_chunk(session, chunk_id, "bench:1")
    with sessions.begin() as session:
        beat(session, chunk_id)
    with sessions() as session:
        known_images(session, version_id, "none", [o.sha256 for o in outcomes])
        recorded_paths(session, job_id, paths)
    with sessions.begin() as session:
        record_chunk(session, job_id, version_id, "none", outcomes)
        finish_chunk(session, chunk_id)


def digests(tag: str) -> list[str]:
    return [hashlib.sha256(f"{tag} {i}".encode()).hexdigest() for i in range(64)]


# At 8k rows a lookup of a chunk's 64 unique keys may rightly read a whole small table,
# but not results: a semi-join on the version and detector that every row shares (guessed
# rare) scanned all of it there. At 60k the old update's plan also passed jit_above_cost.
@pytest.mark.parametrize("rows, watched", [(8_000, {"results"}), (60_000, WATCHED)])
def test_chunk_statements_use_indexes_and_no_jit_on_tables_without_statistics(pg_url, rows, watched):
    sessions = open_database(pg_url)
    with sessions.begin() as session:
        first = add_version(session, "first").id
    for round_ in range(6):  # past the driver's threshold for preparing a statement
        label_like_a_worker(sessions, first, chunk_outcomes(digests(f"early {round_}"), f"early{round_}"))
    old_version = prefill(sessions, rows)
    with sessions.begin() as session:
        newer = add_version(session, "newer").id
    relabelled = digests("early 0")
    fresh = chunk_outcomes(digests("fresh"), "fresh")
    with explained(sessions.kw["bind"]) as plans:
        label_like_a_worker(sessions, old_version, fresh)
        label_like_a_worker(sessions, newer, chunk_outcomes(relabelled, "relabel"))
        with sessions() as session:  # a watcher's rescan: the chunk's files and one never seen
            paths = [o.path for o in fresh]
            settled = settled_at(
                session, [*paths, "/new/unseen.jpg"], model_version_id=old_version, detector="none"
            )
    with sessions() as session:  # the connection that ran every chunk
        generic = session.scalar(text("SELECT coalesce(sum(generic_plans), 0) FROM pg_prepared_statements"))

    scans, jit, touched = [], [], set()
    for statement, plan, _ in plans:
        for node in nodes(plan["Plan"]):
            touched.add(node.get("Relation Name"))
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in watched:
                scans.append(f"{node['Relation Name']}: {statement}")
        if "JIT" in plan:
            jit.append(statement)
    assert scans == []
    assert jit == []
    writes = {setting for statement, _, setting in plans if statement.startswith("INSERT INTO results")}
    assert writes == {"off"}  # the chunk's transaction turned JIT off for itself
    assert WATCHED <= touched
    assert any(statement.startswith("UPDATE results") for statement, _, _ in plans)
    assert generic == 0  # each run was planned for the tables as they were then
    assert sorted(settled) == sorted(paths)
    with sessions() as session:  # the relabelled images show the newer version only
        current = session.scalars(
            select(Result.model_version_id)
            .join(Image, Image.id == Result.image_id)
            .where(Result.is_current.is_(True), Image.sha256.in_(relabelled))
            .distinct()
        ).all()
    assert current == [newer]
