"""Async service functions over a DB session."""
