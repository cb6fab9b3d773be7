"""apply_catalog: images per accelerator kind, registry override, versions, defaults under the model's."""

from pathlib import Path
from typing import Any

import pytest

from gpustack.engines.catalog import BUILT_INS, override_image
from gpustack.worker.backends.base import LaunchContext, get_backend
from gpustack.worker.catalog import CatalogError, apply_catalog

CTX = LaunchContext(
    instance_id=1, instance_name="m-1", model_name="m", model_path="/models/m.gguf", host="127.0.0.1", port=40000,
    work_dir=Path("/tmp/w"),
)  # fmt: skip


def _built_in(name: str) -> dict[str, Any]:
    return {
        "backend_name": name,
        "is_built_in": True,
        "default_backend_param": [],
        "default_env": {},
        **BUILT_INS[name],
    }


@pytest.mark.parametrize(
    ("vendor", "gpus", "image"),
    [
        ("nvidia", (0,), "gpustack/llama-box:0.0.170-cuda12.8"),
        ("amd", (0,), "gpustack/llama-box:0.0.170-rocm6.4"),
        ("huawei", (1,), "gpustack/llama-box:0.0.170-cann8.2"),
        ("nvidia", (), "gpustack/llama-box:0.0.170-cpu"),
    ],
)
def test_image_per_accelerator_kind(vendor: str, gpus: tuple[int, ...], image: str) -> None:
    ctx = apply_catalog(CTX.__class__(**{**vars(CTX), "gpu_vendor": vendor, "gpu_indexes": gpus}),
                        _built_in("llama-box"), docker=True)  # fmt: skip
    assert ctx.image_name == image and ctx.health_path == "/v1/models"
    assert get_backend("llama-box")(ctx).image == image


def test_registry_and_namespace_override_built_in_images() -> None:
    ctx = apply_catalog(CTX, _built_in("vox-box"), docker=True, registry="mirror.local:5000", namespace="ai")
    assert ctx.image_name == "mirror.local:5000/ai/runner:cpu-voxbox0.0.20"
    assert override_image("gpustack/runner:x", None, None) == "gpustack/runner:x"
    user = {**_built_in("vox-box"), "is_built_in": False}
    assert apply_catalog(CTX, user, docker=True, registry="mirror.local:5000").image_name == (
        "gpustack/runner:cpu-voxbox0.0.20"
    )


def test_model_image_and_process_runtime_need_no_image() -> None:
    model_image = CTX.__class__(**{**vars(CTX), "image_name": "mine:1"})
    assert apply_catalog(model_image, _built_in("llama-box"), docker=True).image_name == "mine:1"
    assert apply_catalog(CTX, _built_in("llama-box"), docker=False).image_name is None


def test_missing_image_and_unknown_version_are_clear() -> None:
    with pytest.raises(CatalogError, match="has no cpu image for the docker runtime: set the model's image_name"):
        apply_catalog(CTX, _built_in("vllm"), docker=True)
    with pytest.raises(CatalogError, match=r"no version '9' \(known: 0.11.0\)"):
        apply_catalog(CTX.__class__(**{**vars(CTX), "backend_version": "9"}), _built_in("vllm"), docker=False)


def test_defaults_sit_under_the_model_settings() -> None:
    backend = {
        **_built_in("vllm"),
        "default_env": {"A": "backend", "B": "backend"},
        "default_backend_param": ["--max-num-seqs 64", "--enforce-eager"],
        "health_check_path": "/ready",
    }
    model = CTX.__class__(**{**vars(CTX), "env": {"B": "model"}, "backend_parameters": ("--max-num-seqs 8",)})
    ctx = apply_catalog(model, backend, docker=False)
    assert ctx.env == {"A": "backend", "B": "model"}
    spec = get_backend("vllm")(ctx)
    assert spec.argv[-3:] == ("--enforce-eager", "--max-num-seqs", "8") and spec.health_path == "/ready"
    assert spec.argv.count("--max-num-seqs") == 1


def test_custom_backend_run_command_from_the_catalog() -> None:
    backend = {**_built_in("custom"), "default_run_command": "engine {{model_path}} --port {{port}}"}
    spec = get_backend("custom")(apply_catalog(CTX, backend, docker=False))
    assert spec.argv == ("engine", "/models/m.gguf", "--port", "40000")
    assert apply_catalog(CTX, None, docker=True) is CTX


def test_custom_version_run_command_wins_over_the_default() -> None:
    backend = {
        **_built_in("custom"),
        "default_run_command": "default {{port}}",
        "version_configs": {"echo": {"run_command": "echo-engine {{model_name}} {{port}}"}},
    }
    ctx = CTX.__class__(**{**vars(CTX), "backend_version": "echo"})
    assert get_backend("custom")(apply_catalog(ctx, backend, docker=False)).argv == ("echo-engine", "m", "40000")
    own = CTX.__class__(**{**vars(ctx), "run_command": "mine {{port}}"})
    assert get_backend("custom")(apply_catalog(own, backend, docker=False)).argv == ("mine", "40000")
