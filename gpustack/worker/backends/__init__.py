"""Inference engine backends that build launch specs."""

from gpustack.worker.backends import custom, llama_box, mindie, sglang, vllm, vox_box
from gpustack.worker.backends.base import (
    BackendBuilder,
    LaunchContext,
    LaunchSpec,
    available_backends,
    get_backend,
    register,
)

__all__ = [
    "BackendBuilder",
    "LaunchContext",
    "LaunchSpec",
    "available_backends",
    "custom",
    "get_backend",
    "llama_box",
    "mindie",
    "register",
    "sglang",
    "vllm",
    "vox_box",
]
