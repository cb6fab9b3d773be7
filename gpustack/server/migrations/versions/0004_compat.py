"""GPUStack compatibility: worker hostname and interface name, the source of each model instance

Revision ID: 0004_compat
Revises: 0003_hardening_b
Create Date: 2026-11-25 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_compat"
down_revision = "0003_hardening_b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("hostname", sa.String(length=255), nullable=False, server_default=""))
        batch.add_column(sa.Column("ifname", sa.String(length=255), nullable=False, server_default=""))
    with op.batch_alter_table("model_instances") as batch:
        batch.add_column(sa.Column("source", sa.String(length=32), nullable=False, server_default="local_path"))
    # instances created before this revision take their model's source
    same_model = "models.id = model_instances.model_id"
    op.execute(
        f"UPDATE model_instances SET source = (SELECT models.source FROM models WHERE {same_model}) "
        f"WHERE EXISTS (SELECT 1 FROM models WHERE {same_model})"
    )


def downgrade() -> None:
    with op.batch_alter_table("model_instances") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("ifname")
        batch.drop_column("hostname")
