"""Parameter merging shared by the backends, and the registry."""

import pytest

from gpustack.worker.backends import available_backends, get_backend
from gpustack.worker.backends._common import flag_key, is_flag, merge_args, normalize_params


def test_registry_has_every_backend() -> None:
    assert {"llama-box", "custom", "vllm", "sglang", "vox-box"} <= set(available_backends())


def test_unknown_backend_raises_key_error() -> None:
    with pytest.raises(KeyError, match="not-an-engine"):
        get_backend("not-an-engine")


def test_is_flag_and_normalize() -> None:
    assert is_flag("--x") and is_flag("-c") and is_flag("--x=1")
    assert not is_flag("-1") and not is_flag("-0.5") and not is_flag("value") and not is_flag("-")
    assert normalize_params(["--ctx-size 8192", "--a=b c", " ", "-ngl", "-1"]) == [
        "--ctx-size",
        "8192",
        "--a=b c",
        "-ngl",
        "-1",
    ]


def test_flag_key_aliases_and_spelling() -> None:
    aliases = [("--gpu-layers", "-ngl")]
    assert flag_key("-ngl", aliases) == flag_key("--gpu-layers=3", aliases) == "--gpu-layers"
    assert flag_key("--n_ctx") == flag_key("--n-ctx") == "--n-ctx"


def test_merge_args_overrides_defaults_and_keeps_protected() -> None:
    defaults = ["--host", "0.0.0.0", "--port", "80", "--ctx", "2048", "--flag", "-ngl", "99"]
    merged = merge_args(
        defaults,
        ["--ctx=4096", "--gpu-layers 10", "--port", "1", "--extra", "a", "b"],
        aliases=[("--gpu-layers", "-ngl")],
        protected=["--host", "--port"],
    )
    assert merged == [
        "--host", "0.0.0.0", "--port", "80", "--flag",
        "--ctx=4096", "--gpu-layers", "10", "--extra", "a", "b",
    ]  # fmt: skip


def test_merge_args_keeps_repeated_user_flags() -> None:
    assert merge_args(["--lora", "a"], ["--lora", "b", "--lora", "c"]) == ["--lora", "b", "--lora", "c"]
