"""A database pre-filled by bulk SQL, as after a bulk load: no statistics gathered."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import create_job
from db.models import ATTRIBUTES, ModelVersion

PREFILL = """
INSERT INTO images (id, sha256, size_bytes, width, height)
SELECT i, md5(i::text) || md5((-i)::text), 10000, 178, 218 FROM generate_series(1, :rows) AS i;
INSERT INTO files (id, path, image_id, read_at)
SELECT i, '/prefill/' || (i % 1000) || '/' || i || '.jpg', i, now() FROM generate_series(1, :rows) AS i;
INSERT INTO job_items (job_id, file_id, status, faces, dropped_faces, finished_at)
SELECT :job, i, 'done', 1, 0, now() FROM generate_series(1, :rows) AS i;
INSERT INTO results (image_id, model_version_id, detector, face, box_x, box_y, box_w, box_h,
                     p_eyeglasses, p_beard, p_mustache, p_hat, eyeglasses, beard, mustache, hat,
                     is_current)
SELECT i, :version, 'none', 0, 0, 0, 178, 218, p[1], p[2], p[3], p[4],
       p[1] > 0.5, p[2] > 0.5, p[3] > 0.5, p[4] > 0.5, true
FROM (SELECT i, ARRAY[random(), random(), random(), random()] AS p
      FROM generate_series(1, :rows) AS i) AS g;
UPDATE jobs SET status = 'complete', images = :rows, finished = :rows, scanned_at = now(),
    finished_at = now() WHERE id = :job;
INSERT INTO chunks (job_id, number, paths, status, attempts, sent_at, finished_at)
SELECT :job, c, '[]', 'done', 1, now(), now() FROM generate_series(1, :rows / 64) AS c;
SELECT setval(pg_get_serial_sequence('images', 'id'), greatest(:rows, 1));
SELECT setval(pg_get_serial_sequence('files', 'id'), greatest(:rows, 1))
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
    """Fill an empty database with ``rows`` images, files, job items and results (one face
    each) of one finished job, and its chunks, by bulk SQL; no ANALYZE. The version's id."""
    with sessions.begin() as session:
        version = add_version(session, "prefill")
        job = create_job(session, roots=["/prefill"], options={"aligned": True}, model_version_id=version.id)
        for statement in PREFILL.strip().split(";\n"):
            session.execute(text(statement), {"rows": rows, "job": job.id, "version": version.id})
        return version.id
