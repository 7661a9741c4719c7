"""schedules of two kinds: retraining, or a rescan of URL prefixes (its URLs and options, and
the last job it submitted, so a firing while that job runs is skipped)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="retrain"))
        batch.add_column(sa.Column("options", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("last_job_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_schedules_last_job", "jobs", ["last_job_id"], ["id"])


def downgrade() -> None:
    op.execute("DELETE FROM schedules WHERE kind <> 'retrain'")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_constraint("fk_schedules_last_job", type_="foreignkey")
        batch.drop_column("last_job_id")
        batch.drop_column("options")
        batch.drop_column("kind")
