"""at most one queued training run, kept by a partial unique index (two claims at once: the
second fails instead of queueing a duplicate)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    op.execute(
        "UPDATE training_runs SET status = 'failed', decision = 'queued twice at once; the other one ran' "
        "WHERE status = 'queued' AND id > (SELECT min(id) FROM training_runs WHERE status = 'queued')"
    )
    op.create_index(
        "uq_training_runs_one_queued",
        "training_runs",
        ["status"],
        unique=True,
        sqlite_where=QUEUED,
        postgresql_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("uq_training_runs_one_queued", table_name="training_runs")
