"""each result set names its face detector: a re-run with another detector is another set

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("detector", sa.String(length=40), nullable=False, server_default="none"))
    # rows written before: detected faces carry MTCNN's confidence, aligned ones none
    op.execute("UPDATE results SET detector = 'mtcnn' WHERE detection_confidence IS NOT NULL")
    with op.batch_alter_table("results") as batch:
        batch.alter_column("detector", server_default=None)
        batch.drop_constraint("uq_results_face", type_="unique")
        batch.create_unique_constraint(
            "uq_results_face", ["image_id", "model_version_id", "detector", "face"]
        )


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_constraint("uq_results_face", type_="unique")
        batch.create_unique_constraint("uq_results_face", ["image_id", "model_version_id", "face"])
        batch.drop_column("detector")
