"""Runtimes that start and stop launch specs (process, docker)."""

from gpustack.worker.runtimes.base import Runtime, RuntimeStartError, get_runtime

__all__ = ["Runtime", "RuntimeStartError", "get_runtime"]
