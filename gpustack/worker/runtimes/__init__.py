"""Runtimes that start and stop launch specs (process, docker)."""
