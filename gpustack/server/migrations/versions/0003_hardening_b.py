"""least privilege: API key scopes, session epochs, per-worker registration secrets

Revision ID: 0003_hardening_b
Revises: 0001
Create Date: 2026-11-25 14:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_hardening_b"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # keys created before scopes existed keep working where they did
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("scopes", sa.String(length=64), nullable=False, server_default="inference,management")
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(
            sa.Column("registration_secret_hash", sa.String(length=255), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("proxy_nonce", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("proxy_nonce")
        batch.drop_column("registration_secret_hash")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_epoch")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
