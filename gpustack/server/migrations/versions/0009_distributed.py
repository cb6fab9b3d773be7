"""distributed inference: the ports the main worker opened for an instance's distributed part

Revision ID: 0009_distributed
Revises: 0008_placement_meta
Create Date: 2026-11-25 17:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_distributed"
down_revision = "0008_placement_meta"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_instances") as batch:
        batch.add_column(sa.Column("ports", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_instances") as batch:
        batch.drop_column("ports")
