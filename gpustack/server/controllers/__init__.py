"""Reconcile loops owned by the server lifespan."""
