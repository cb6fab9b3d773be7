"""Which names count as secrets, and how values are masked in env, parameters and commands."""

import pytest

from gpustack.server.redaction import MASK, is_secret_name, redact_arguments, redact_env, redact_model


@pytest.mark.parametrize(
    "name", ["HF_TOKEN", "OPENAI_API_KEY", "--api-key", "--hf-token", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD"]
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["--max-tokens", "CUDA_VISIBLE_DEVICES", "--ctx-size", "--kv-cache-dtype", "LANG"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_env_values_of_secret_names_are_masked() -> None:
    assert redact_env({"HF_TOKEN": "hf_abc", "LANG": "C"}) == {"HF_TOKEN": MASK, "LANG": "C"}


def test_every_argument_form_is_masked() -> None:
    args = ["--api-key=s1", "--hf-token s2", "--api-key", "s3", "--ctx-size", "4096", "--api-key", "--verbose"]
    assert redact_arguments(args) == [
        f"--api-key={MASK}",
        f"--hf-token {MASK}",
        "--api-key",
        MASK,
        "--ctx-size",
        "4096",
        "--api-key",
        "--verbose",
    ]


def test_model_json_is_masked_without_touching_the_rest() -> None:
    data = {"name": "m", "env": {"X_TOKEN": "t"}, "backend_parameters": [], "run_command": "serve --api-key k9 -p 1"}
    out = redact_model(data)
    assert out["env"] == {"X_TOKEN": MASK} and out["run_command"] == f"serve --api-key {MASK} -p 1"
    assert data["env"] == {"X_TOKEN": "t"} and out["name"] == "m"
