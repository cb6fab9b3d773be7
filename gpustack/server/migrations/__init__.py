"""Alembic migrations, run at server start-up."""
