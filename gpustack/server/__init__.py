"""The server: HTTP API, database and reconcile loops."""
