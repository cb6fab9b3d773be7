"""worker maintenance mode: workers.maintenance (GPUStack's {enabled, message}; null: never set)

Revision ID: 0010_dashboard
Revises: 0007_usage_b
Create Date: 2026-11-25 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_dashboard"
down_revision = "0007_usage_b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("maintenance", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("maintenance")
