"""The worker agent: status, assignments, runtimes and proxy."""
