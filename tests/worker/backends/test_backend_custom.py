"""Custom backend: run_command templates, image-only specs and errors."""

from dataclasses import replace

import pytest

from gpustack.worker.backends.base import LaunchContext, get_backend

CTX = LaunchContext(
    instance_id=3,
    instance_name="my-3",
    model_name="my model",
    model_path="/models/with space/m.gguf",
    host="127.0.0.1",
    port=41000,
    run_command="my-engine serve {{model_path}} --port {{ port }} --name {{model_name}} --bind={{host}}",
)


def test_template_substitution_keeps_tokens_whole() -> None:
    spec = get_backend("custom")(CTX)
    assert spec.argv == (
        "my-engine", "serve", "/models/with space/m.gguf", "--port", "41000",
        "--name", "my model", "--bind=127.0.0.1",
    )  # fmt: skip
    assert spec.image is None and spec.keep_entrypoint is False and spec.port == 41000


def test_parameters_are_appended_with_placeholders() -> None:
    spec = get_backend("custom")(replace(CTX, backend_parameters=("--ctx 4096", "--alias={{model_name}}")))
    assert spec.argv[-3:] == ("--ctx", "4096", "--alias=my model")


def test_run_command_with_image_replaces_entrypoint() -> None:
    spec = get_backend("custom")(replace(CTX, image_name="ghcr.io/me/engine:1"))
    assert spec.image == "ghcr.io/me/engine:1"
    assert spec.argv[0] == "my-engine" and spec.keep_entrypoint is False
    assert spec.mounts == ("/models/with space/m.gguf",)


def test_image_without_run_command_keeps_entrypoint() -> None:
    ctx = replace(CTX, run_command=None, image_name="ghcr.io/me/engine:1", backend_parameters=("--port={{port}}",))
    spec = get_backend("custom")(ctx)
    assert spec.image == "ghcr.io/me/engine:1"
    assert spec.argv == ("--port=41000",)
    assert spec.keep_entrypoint is True


def test_needs_run_command_or_image() -> None:
    with pytest.raises(ValueError, match="run_command or an image_name"):
        get_backend("custom")(replace(CTX, run_command="  "))


def test_unknown_placeholder() -> None:
    with pytest.raises(ValueError, match="model_dir"):
        get_backend("custom")(replace(CTX, run_command="engine {{model_dir}}"))
