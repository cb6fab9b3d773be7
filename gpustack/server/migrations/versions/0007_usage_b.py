"""GPU power in the GPU history

Revision ID: 0007_usage_b
Revises: 0009_distributed
Create Date: 2026-11-25 17:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_usage_b"
down_revision = "0009_distributed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gpu_samples") as batch:
        batch.add_column(sa.Column("power", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gpu_samples") as batch:
        batch.drop_column("power")
