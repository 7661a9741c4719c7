"""How far the control plane goes: N simulated workers, each its own process, label chunks
through the real chunk code and SQL (``worker.labeling.label_chunk`` on a ledger chunk: plan,
claim with a heartbeat, read, hash and decode, ``record_chunk``, finish) against the real
Redis and PostgreSQL, the model replaced by a stand-in that returns fixed probabilities at
``--gpu-rate`` faces/s. Chunk messages travel through a Redis list, as Celery's would; a
feeder keeps it full with new aligned images (one face each, new content every time).

For each worker count it reports faces/s and chunks/s over a timed window, the client's
time per statement kind, and the CPU time of the database's processes (from /proc) per 1,000
faces. With ``--rows`` the smallest count runs again on a database pre-filled by bulk SQL to
that many results and never analysed (as after a bulk load), to show the cost per chunk does
not grow with the table. The database is the bench's own, dropped at the end.

Usage: python bench/control_plane.py [--workers 1 --workers 2 ...] [--seconds 20]
           [--rows 1000000] [--gpu-rate 2000] [--json report.json]
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.common import REDIS_URL  # noqa: E402
from db.chunks import add_chunks  # noqa: E402
from db.jobs import create_job  # noqa: E402
from db.models import ATTRIBUTES, ModelVersion  # noqa: E402

QUEUE, WINDOW, REPORTS = "control-plane:chunks", "control-plane:window", "control-plane:reports"
CLOCK = os.sysconf("SC_CLK_TCK")


PREFILL = """
INSERT INTO images (id, sha256, size_bytes, width, height)
SELECT :images + i, md5(i::text) || md5((-i)::text), 10000, 178, 218 FROM generate_series(1, :rows) AS i;
INSERT INTO files (id, path, image_id, read_at)
SELECT :files + i, '/prefill/' || (i % 1000) || '/' || i || '.jpg', :images + i, now()
FROM generate_series(1, :rows) AS i;
INSERT INTO job_items (job_id, file_id, status, faces, dropped_faces, finished_at)
SELECT :job, :files + i, 'done', 1, 0, now() FROM generate_series(1, :rows) AS i;
INSERT INTO results (image_id, model_version_id, detector, face, box_x, box_y, box_w, box_h,
                     p_eyeglasses, p_beard, p_mustache, p_hat, eyeglasses, beard, mustache, hat,
                     is_current)
SELECT :images + i, :version, 'none', 0, 0, 0, 178, 218, p[1], p[2], p[3], p[4],
       p[1] > 0.5, p[2] > 0.5, p[3] > 0.5, p[4] > 0.5, true
FROM (SELECT i, ARRAY[random(), random(), random(), random()] AS p
      FROM generate_series(1, :rows) AS i) AS g;
UPDATE jobs SET status = 'complete', images = :rows, finished = :rows, scanned_at = now(),
    finished_at = now() WHERE id = :job;
INSERT INTO chunks (job_id, number, paths, status, attempts, sent_at, finished_at)
SELECT :job, c, '[]', 'done', 1, now(), now() FROM generate_series(1, :rows / 64) AS c;
SELECT setval(pg_get_serial_sequence('images', 'id'), :images + :rows + 1, false);
SELECT setval(pg_get_serial_sequence('files', 'id'), :files + :rows + 1, false)
"""


def add_version(session: Session, name: str) -> ModelVersion:
    """A model version row (no artifact behind it: the stand-in classifies)."""
    version = ModelVersion(
        name=name,
        path=f"/stand-in/{name}",
        sha256="0" * 64,
        backbone="stand-in",
        input_size=32,
        thresholds=dict.fromkeys(ATTRIBUTES, 0.5),
        metrics={},
        meta={},
    )
    session.add(version)
    session.flush()
    return version


def prefill(sessions: sessionmaker[Session], rows: int) -> int:
    """Add ``rows`` images, files, job items and results (one face each) of one finished job,
    and its chunks, by bulk SQL; no ANALYZE. The version's id."""
    with sessions.begin() as session:
        version = add_version(session, "prefill")
        job = create_job(session, roots=["/prefill"], options={"aligned": True}, model_version_id=version.id)
        values = {"rows": rows, "job": job.id, "version": version.id}
        for table in ("images", "files"):
            values[table] = session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}"))
        for statement in PREFILL.strip().split(";\n"):
            session.execute(text(statement), values)
        return version.id


class StandIn:
    """The model's place: fixed probabilities, as fast as a GPU at ``rate`` faces/s."""

    def __init__(self, rate: float):
        self.rate = rate

    def predict(self, pixels):
        import numpy as np

        time.sleep(len(pixels) / self.rate)
        return np.tile(np.linspace(0.2, 0.8, len(ATTRIBUTES), dtype=np.float32), (len(pixels), 1))


class StatementClock:
    """Client-side wall time per statement kind (and per commit) on one engine."""

    def __init__(self, engine):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.counts: dict[str, int] = collections.defaultdict(int)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        commit = engine.dialect.do_commit

        def timed_commit(connection):
            started = time.perf_counter()
            commit(connection)
            self._add("COMMIT", time.perf_counter() - started)

        engine.dialect.do_commit = timed_commit

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["statement started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self._add(kind(statement), time.perf_counter() - conn.info.pop("statement started"))

    def _add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds
        self.counts[name] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.counts.clear()


def kind(statement: str) -> str:
    """A statement's kind: its text up to WHERE, VALUES or SET, at most 60 characters."""
    words = statement.split()
    for end, word in enumerate(words):
        if word in ("WHERE", "VALUES", "SET") and end > 1:
            words = words[: end + (word == "SET")]
            break
    return " ".join(words)[:60]


def work(url: str, broker: str, rate: float, results: str) -> None:
    """One simulated worker process: label chunk messages until the window closes, then
    push what its statements cost inside the window to ``results``."""
    import redis

    import facelabel.vision.classifier
    from db.engine import open_database
    from facelabel.settings import read_settings
    from worker.labeling import label_chunk

    stand_in = StandIn(rate)
    facelabel.vision.classifier.get_classifier = lambda *args, **kwargs: (
        stand_in
    )  # labeling looks it up per call
    sessions, settings, client = open_database(url), read_settings(), redis.Redis.from_url(broker)
    clock = StatementClock(sessions.kw["bind"])
    state = None
    while state != b"closed":
        message = client.blpop([QUEUE], timeout=1)
        if message is not None:
            chunk = json.loads(message[1])
            label_chunk(sessions, chunk["job"], chunk["paths"], settings=settings, chunk_id=chunk["id"])
        seen = client.get(WINDOW)
        if seen == b"open" and state is None:
            clock.reset()
        state = seen or state
    client.rpush(results, json.dumps({"seconds": clock.seconds, "counts": clock.counts}))


class Feeder(threading.Thread):
    """Keeps the queue about ``depth`` chunks long: new images on disk (a JPEG with its number
    appended: new content each), a ledger row per chunk, then its message."""

    def __init__(
        self, sessions: sessionmaker[Session], client, folder: Path, job_id: int, size: int, depth: int
    ):
        super().__init__(daemon=True)
        self.sessions, self.client, self.folder = sessions, client, folder
        self.job_id, self.size, self.depth = job_id, size, depth
        self.number, self.stop = 0, threading.Event()
        self.jpeg = _tiny_jpeg()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.client.llen(QUEUE) >= self.depth:
                time.sleep(0.02)
                continue
            paths = []
            for _ in range(self.size):
                path = self.folder / f"{self.job_id}_{self.number}.jpg"
                path.write_bytes(self.jpeg + self.number.to_bytes(8, "big"))
                paths.append(str(path))
                self.number += 1
            with self.sessions.begin() as session:
                (chunk_id,) = add_chunks(session, self.job_id, self.number // self.size, [paths])
            self.client.rpush(QUEUE, json.dumps({"job": self.job_id, "id": chunk_id, "paths": paths}))


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 90, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


def cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU seconds of each process still there (its threads included)."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK
    return found


def database_pids(session: Session) -> tuple[list[int], list[int]]:
    """The backends serving this database, and the server's WAL writer, checkpointer and
    background writer (shared with any other database on the server)."""
    rows = session.execute(
        text(
            "SELECT pid, datname = current_database() FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND (datname = current_database() OR backend_type IN "
            "('walwriter', 'checkpointer', 'background writer'))"
        )
    ).all()
    return [pid for pid, ours in rows if ours], [pid for pid, ours in rows if not ours]


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two samples; a process that started in between counts from zero."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def measure(url: str, sessions: sessionmaker[Session], workers: int, args, folder: Path) -> dict:
    """``workers`` processes labelling for ``args.seconds`` after a warm-up: what they did and
    what it cost the database."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete(QUEUE, WINDOW, REPORTS)
    with sessions.begin() as session:
        version = add_version(session, f"bench-{workers}-{time.time_ns()}").id
        options = {"aligned": True, "batch_size": args.chunk_size}
        job_id = create_job(session, roots=[str(folder)], options=options, model_version_id=version).id
    feeder = Feeder(sessions, client, folder, job_id, args.chunk_size, depth=2 * workers + 2)
    feeder.start()
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=work, args=(url, REDIS_URL, args.gpu_rate, REPORTS)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    time.sleep(args.warmup)
    before, started = _sample(sessions, job_id, processes), time.perf_counter()
    client.set(WINDOW, "open")
    time.sleep(args.seconds)
    after, seconds = _sample(sessions, job_id, processes), time.perf_counter() - started
    client.set(WINDOW, "closed")
    reports = [json.loads(client.blpop([REPORTS], timeout=120)[1]) for _ in processes]
    feeder.stop.set()
    for process in processes:
        process.join()
    feeder.join()
    chunks = after["done"] - before["done"]
    faces = chunks * args.chunk_size
    backends = spent(before["backends"], after["backends"])
    database = backends + spent(before["background"], after["background"])
    workers_cpu = spent(before["workers"], after["workers"])
    statements = collections.Counter()
    for report in reports:
        statements.update(report["seconds"])
    return {
        "workers": workers,
        "seconds": round(seconds, 2),
        "chunks": chunks,
        "faces": faces,
        "failed": after["failed"],
        "faces_per_s": round(faces / seconds, 1),
        "chunks_per_s": round(chunks / seconds, 2),
        "database_cpu_ms_per_1000_faces": round(1e6 * database / faces, 1) if faces else None,
        "backends_cpu_ms_per_1000_faces": round(1e6 * backends / faces, 1) if faces else None,
        "worker_cpu_ms_per_1000_faces": round(1e6 * workers_cpu / faces, 1) if faces else None,
        "database_cores": round(database / seconds, 2),
        "worker_cores": round(workers_cpu / seconds, 2),
        "client_ms_per_chunk": {k: round(1e3 * v / chunks, 2) for k, v in statements.most_common()}
        if chunks
        else {},
    }


def _sample(sessions: sessionmaker[Session], job_id: int, processes) -> dict:
    with sessions() as session:
        ours, shared = database_pids(session)
        done, failed = session.execute(
            text(
                "SELECT (SELECT count(*) FROM chunks WHERE job_id = :job AND status = 'done'), "
                "(SELECT count(*) FROM job_items WHERE job_id = :job AND status = 'failed')"
            ),
            {"job": job_id},
        ).one()
    return {
        "done": done,
        "failed": failed,
        "backends": cpu_seconds(ours),
        "background": cpu_seconds(shared),
        "workers": cpu_seconds(p.pid for p in processes),
    }


def summarise(runs: list[dict], gpu_rate: float) -> dict:
    """Where faces/s stops growing (a worker count whose faces/s is under 80 % of that many
    times one worker's), the ceiling, and the GPU workers it feeds."""
    empty = [run for run in runs if run["rows_before"] == 0]
    single = empty[0]["faces_per_s"] / empty[0]["workers"]
    saturated = next((r["workers"] for r in empty if r["faces_per_s"] < 0.8 * r["workers"] * single), None)
    ceiling = max(r["faces_per_s"] for r in empty)
    cpus = len(os.sched_getaffinity(0))
    top = max(empty, key=lambda r: r["faces_per_s"])
    busy = top["database_cores"] + top["worker_cores"]
    return {
        "saturates_at_workers": saturated,
        "ceiling_faces_per_s": ceiling,
        "gpu_workers_at_ceiling": round(ceiling / gpu_rate, 1),
        "cpus": cpus,
        "at_ceiling": (
            f"database processes {top['database_cores']} cores, workers {top['worker_cores']} cores "
            f"of {cpus} ({'all' if busy >= 0.85 * cpus else 'not all'} of this machine's CPUs)"
        ),
        "database_cpu_ms_per_1000_faces_by_rows": {  # at the first worker count: flatness
            r["rows_before"]: r["database_cpu_ms_per_1000_faces"]
            for r in runs
            if r["workers"] == runs[0]["workers"]
        },
    }


def main() -> None:
    from db.engine import open_database
    from tests.helpers import drop_pg_database, fresh_pg_database

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, action="append", help="Repeat (default: 1 2 4 8 16).")
    parser.add_argument("--seconds", type=float, default=20.0, help="Measured window per run.")
    parser.add_argument("--warmup", type=float, default=8.0, help="Seconds before the window opens.")
    parser.add_argument("--rows", type=int, default=0, help="Results pre-filled for the flatness run.")
    parser.add_argument("--gpu-rate", type=float, default=2000.0, help="Faces/s of one stand-in GPU.")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args()
    counts = args.workers or [1, 2, 4, 8, 16]
    runs = []
    plans = [(0, counts)] + ([(args.rows, counts[:1])] if args.rows else [])
    for rows, worker_counts in plans:
        url = fresh_pg_database(f"facelabel_bench_control_plane_{rows}")
        try:
            sessions = open_database(url)
            if rows:
                prefill(sessions, rows)
                with sessions.begin() as session:  # the load's dirty pages written now, not in the window
                    session.execute(text("CHECKPOINT"))
            for workers in worker_counts:
                with tempfile.TemporaryDirectory(prefix="facelabel-bench-") as folder:
                    run = {"rows_before": rows, **measure(url, sessions, workers, args, Path(folder))}
                print(json.dumps(run), flush=True)
                runs.append(run)
            sessions.kw["bind"].dispose()
        finally:
            drop_pg_database(url)
    report = {"gpu_rate": args.gpu_rate, "chunk_size": args.chunk_size, "runs": runs}
    report["summary"] = summarise(runs, args.gpu_rate)
    print(json.dumps(report["summary"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
