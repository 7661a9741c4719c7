"""The label backlog as an autoscaler sees it: chunks in the ledger not finished yet.

A chunk counts from the moment it is recorded (before its message is sent) until the
transaction that stores its results marks it done, wherever its message is meanwhile: in
Redis, in a worker's prefetch buffer, in a child's hands, or lost and waiting for the
reconciler. Re-sent duplicates of one chunk are one row, so they count once.

``BACKLOG_QUERY`` is the one copy of the SQL: KEDA's PostgreSQL trigger runs it verbatim
(``deploy/k8s/render.py`` writes it into the ScaledObject, and a test runs it during a job).
"""

from __future__ import annotations

# IN, not "<> 'done'": ix_chunks_status then reads only the few unfinished rows of a ledger
# that keeps every finished chunk.
BACKLOG_QUERY = "SELECT count(*) FROM chunks WHERE status IN ('queued', 'claimed')"
