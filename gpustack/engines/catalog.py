"""The built-in backends of the catalog as data: versions, images per accelerator kind, health paths."""

from typing import Any

ACCELERATORS = ("cuda", "rocm", "cann", "cpu")
VENDOR_ACCELERATOR = {"nvidia": "cuda", "amd": "rocm", "ascend": "cann", "huawei": "cann"}
BUILT_IN_NAMES = ("vllm", "sglang", "mindie", "vox-box", "llama-box", "custom")


def _runner(version: str, engine: str, kinds: tuple[str, ...]) -> dict[str, str]:
    """gpustack/runner images, one tag per accelerator kind. These defaults were not checked against a registry
    (none is reachable where this was written): admins correct them with PUT /v2/inference-backends/{id}."""
    tags = {"cuda": "cuda12.8", "rocm": "rocm6.4", "cann": "cann8.2", "cpu": "cpu"}
    return {kind: f"gpustack/runner:{tags[kind]}-{engine}{version}" for kind in kinds}


def _version(images: dict[str, str], command: str | None = None) -> dict[str, Any]:
    return {"images": images, "run_command": command, "env": {}}


BUILT_INS: dict[str, dict[str, Any]] = {
    "vllm": {
        "description": "vLLM: high-throughput LLM, embedding and reranker serving",
        "health_check_path": "/health",
        "default_version": "0.11.0",
        "version_configs": {"0.11.0": _version(_runner("0.11.0", "vllm", ("cuda", "rocm")), "vllm")},
    },
    "sglang": {
        "description": "SGLang: LLM, VLM and diffusion serving",
        "health_check_path": "/health",
        "default_version": "0.5.4",
        "version_configs": {"0.5.4": _version(_runner("0.5.4", "sglang", ("cuda", "rocm")), "python3")},
    },
    "mindie": {
        "description": "MindIE: LLM serving on Ascend NPUs",
        "health_check_path": "/info",
        "default_version": "2.1.rc1",
        "version_configs": {"2.1.rc1": _version(_runner("2.1.rc1", "mindie", ("cann",)), "mindieservice_daemon")},
    },
    "vox-box": {
        "description": "VoxBox: text-to-speech and speech-to-text with an OpenAI audio API",
        "health_check_path": "/v1/models",
        "default_version": "0.0.20",
        "version_configs": {"0.0.20": _version(_runner("0.0.20", "voxbox", ("cuda", "cpu")), "vox-box")},
    },
    "llama-box": {
        "description": "llama-box: GGUF models with llama.cpp, GPU/CPU offload and RPC servers",
        "health_check_path": "/v1/models",
        "default_version": "0.0.170",
        "version_configs": {
            "0.0.170": _version(
                {
                    "cuda": "gpustack/llama-box:0.0.170-cuda12.8",
                    "rocm": "gpustack/llama-box:0.0.170-rocm6.4",
                    "cann": "gpustack/llama-box:0.0.170-cann8.2",
                    "cpu": "gpustack/llama-box:0.0.170-cpu",
                },
                "llama-box",
            )
        },
    },
    "custom": {
        "description": "Any engine: a run_command template and/or an image",
        "health_check_path": "/v1/models",
        "default_version": None,
        "version_configs": {},
    },
}


def override_image(image: str, registry: str | None, namespace: str | None) -> str:
    """A built-in image under another registry and/or namespace: `gpustack/runner:x` with registry
    `mirror.local:5000` and namespace `ai` → `mirror.local:5000/ai/runner:x`."""
    path = image
    if namespace:
        path = f"{namespace.strip('/')}/{image.rsplit('/', 1)[-1]}"
    return f"{registry.rstrip('/')}/{path}" if registry else path


def accelerator_kind(vendor: str, has_gpus: bool) -> str:
    """The image kind for a placement: the GPU vendor's (cuda, rocm, cann), cpu without GPUs."""
    return VENDOR_ACCELERATOR.get(vendor, "cuda") if has_gpus else "cpu"


def pick_image(version_config: dict[str, Any], kind: str) -> str | None:
    """The version's image for an accelerator kind; a single `image_name` serves every kind."""
    images = version_config.get("images") or {}
    return images.get(kind) or version_config.get("image_name")
