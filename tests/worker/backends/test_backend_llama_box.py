"""llama-box backend: the llama-box binary argv and the llama-cpp-python server fallback."""

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from gpustack.worker.backends import llama_box
from gpustack.worker.backends._common import BackendUnavailableError
from gpustack.worker.backends.base import LaunchContext, get_backend

CTX = LaunchContext(
    instance_id=7,
    instance_name="qwen-7",
    model_name="qwen",
    model_path="/data/models/qwen.gguf",
    host="127.0.0.1",
    port=40001,
    env={"LLAMA_ARG_THREADS": "4"},
    work_dir=Path("/data/work/qwen-7"),
)


@pytest.fixture
def with_binary(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(llama_box.shutil, "which", lambda name: "/opt/bin/llama-box")
    return "/opt/bin/llama-box"


@pytest.fixture
def without_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_box.shutil, "which", lambda name: None)


def _value(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_llama_box_binary_cpu(with_binary: str) -> None:
    spec = get_backend("llama-box")(CTX)
    assert spec.argv[:9] == (
        with_binary, "--host", "127.0.0.1", "--port", "40001",
        "-m", "/data/models/qwen.gguf", "--alias", "qwen",
    )  # fmt: skip
    assert _value(spec.argv, "-ngl") == "0"
    assert "--embeddings" in spec.argv and "--tensor-split" not in spec.argv
    assert (spec.port, spec.name, spec.env, spec.image) == (40001, "qwen-7", {"LLAMA_ARG_THREADS": "4"}, None)
    assert spec.work_dir == Path("/data/work/qwen-7") and spec.health_path == "/v1/models"


def test_llama_box_binary_gpus(with_binary: str) -> None:
    spec = get_backend("llama-box")(replace(CTX, gpu_indexes=(2, 5)))
    assert _value(spec.argv, "-ngl") == "999"
    assert _value(spec.argv, "--tensor-split") == "1,1"
    assert spec.gpu_indexes == (2, 5)
    spec = get_backend("llama-box")(replace(CTX, gpu_indexes=(0,), offload_layers=12))
    assert _value(spec.argv, "-ngl") == "12"


def test_llama_box_parameters_override(with_binary: str) -> None:
    params = ("--gpu-layers=20", "-c", "4096", "--port", "1", "--no-mmap")
    argv = get_backend("llama-box")(replace(CTX, gpu_indexes=(0,), backend_parameters=params)).argv
    assert "-ngl" not in argv and "--gpu-layers=20" in argv
    assert "--ctx-size" not in argv and _value(argv, "-c") == "4096"
    assert _value(argv, "--port") == "40001" and argv.count("--port") == 1
    assert argv[-1] == "--no-mmap"


def test_llama_box_in_image(without_binary: None) -> None:
    spec = get_backend("llama-box")(replace(CTX, image_name="gpustack/llama-box:latest"))
    assert spec.argv[0] == "llama-box"
    assert spec.image == "gpustack/llama-box:latest"
    assert spec.mounts == ("/data/models/qwen.gguf",)


def test_llama_cpp_fallback(without_binary: None) -> None:
    spec = get_backend("llama-box")(CTX)
    assert spec.argv == (
        sys.executable, "-m", "gpustack.engines.llama_cpp_server",
        "--model", "/data/models/qwen.gguf", "--host", "127.0.0.1", "--port", "40001",
        "--model_alias", "qwen", "--n_gpu_layers", "0", "--n_ctx", "8192", "--embedding", "true",
    )  # fmt: skip
    assert spec.mounts == ()


def test_llama_cpp_fallback_gpus_and_translated_parameters(without_binary: None) -> None:
    params = ("--ctx-size 4096", "-ts", "3,1", "--n-gpu-layers=10", "--embedding=false", "--host", "0.0.0.0")
    argv = get_backend("llama-box")(replace(CTX, gpu_indexes=(0, 1), backend_parameters=params)).argv
    tail = argv[argv.index("--model_alias") + 2 :]
    assert tail == (
        "--n_ctx", "4096", "--tensor_split", "3", "1", "--n_gpu_layers", "10", "--embedding", "false",
    )  # fmt: skip
    assert _value(argv, "--host") == "127.0.0.1"


def test_llama_cpp_fallback_all_layers_on_gpu(without_binary: None) -> None:
    argv = get_backend("llama-box")(replace(CTX, gpu_indexes=(0, 1))).argv
    assert _value(argv, "--n_gpu_layers") == "-1"
    assert argv[argv.index("--tensor_split") + 1 : argv.index("--tensor_split") + 3] == ("1", "1")


def test_no_engine_available(without_binary: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_box.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendUnavailableError, match="llama-box") as info:
        get_backend("llama-box")(CTX)
    # the worker prefixes "backend 'llama-box': ", so the message must not say it again
    assert not str(info.value).startswith("backend") and "install" in str(info.value)


# A claim of every layer of a 22-block model: llama.cpp counts 23 layers (blocks + the output layer).
CLAIMED = replace(CTX, gpu_indexes=(0,), offload_layers=23, total_layers=23, context_size=4096)


def test_claim_of_every_layer_offloads_the_output_layer_too(with_binary: str) -> None:
    argv = get_backend("llama-box")(CLAIMED).argv
    assert (_value(argv, "-ngl"), _value(argv, "--ctx-size")) == ("999", "4096")


def test_claim_of_every_layer_llama_cpp(without_binary: None) -> None:
    argv = get_backend("llama-box")(CLAIMED).argv
    assert (_value(argv, "--n_gpu_layers"), _value(argv, "--n_ctx")) == ("-1", "4096")


def test_partial_claim_passes_llama_cpp_layer_count(with_binary: str) -> None:
    argv = get_backend("llama-box")(replace(CLAIMED, offload_layers=11)).argv
    assert _value(argv, "-ngl") == "11"


def test_multi_gpu_claim_passes_its_layer_split(with_binary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    split = replace(CLAIMED, gpu_indexes=(0, 3), tensor_split=(9, 14))
    assert _value(get_backend("llama-box")(split).argv, "--tensor-split") == "9,14"
    monkeypatch.setattr(llama_box.shutil, "which", lambda name: None)
    argv = get_backend("llama-box")(split).argv
    assert argv[argv.index("--tensor_split") + 1 : argv.index("--tensor_split") + 3] == ("9", "14")


def test_user_context_wins_over_the_claimed_one(without_binary: None) -> None:
    argv = get_backend("llama-box")(replace(CLAIMED, backend_parameters=("--ctx-size", "1024"))).argv
    assert _value(argv, "--n_ctx") == "1024" and argv.count("--n_ctx") == 1
