"""job items indexed by file, with when each finished: a watcher's rescan looks up each path's
outcomes and its last finish on the index instead of scanning every job's items

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_job_items_file_finished", "job_items", ["file_id", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_job_items_file_finished", table_name="job_items")
