"""model metadata cache: what estimates need of hub models and worker paths, kept across restarts

Revision ID: 0008_placement_meta
Revises: 0005_backends
Create Date: 2026-11-25 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_placement_meta"
down_revision = "0005_backends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_metadata_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("repo_id", sa.String(length=1024), nullable=False),
        sa.Column("revision", sa.String(length=255), nullable=False),
        sa.Column("selection", sa.String(length=1024), nullable=False),
        sa.Column("commit_sha", sa.String(length=255), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("model_metadata_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_metadata_cache_cache_key"), ["cache_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("model_metadata_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_metadata_cache_cache_key"))
    op.drop_table("model_metadata_cache")
