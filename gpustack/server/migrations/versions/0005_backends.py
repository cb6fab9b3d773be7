"""backend catalog: inference_backends (built-ins are seeded at start-up)

Revision ID: 0005_backends
Revises: 0006_usage
Create Date: 2026-11-25 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_backends"
down_revision = "0006_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inference_backends",
        sa.Column("backend_name", sa.String(length=255), nullable=False),
        sa.Column("version_configs", sa.JSON(), nullable=False),
        sa.Column("default_version", sa.String(length=64), nullable=True),
        sa.Column("default_backend_param", sa.JSON(), nullable=False),
        sa.Column("default_run_command", sa.String(length=4096), nullable=True),
        sa.Column("default_entrypoint", sa.String(length=1024), nullable=True),
        sa.Column("description", sa.String(length=2048), nullable=True),
        sa.Column("health_check_path", sa.String(length=255), nullable=True),
        sa.Column("default_env", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("is_built_in", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("inference_backends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inference_backends_backend_name"), ["backend_name"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("inference_backends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_backends_backend_name"))
    op.drop_table("inference_backends")
