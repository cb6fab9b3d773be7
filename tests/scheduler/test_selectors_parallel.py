"""tp × pp × dp from backend parameters, and what the tensor-parallel size must divide."""

import pytest

from gpustack.scheduler.selectors.parallel import Parallel, count_problem, parallel_sizes, selection_problem, tp_problem
from gpustack.scheduler.types import ResourceEstimate

LLAMA_70B = ResourceEstimate(weights_bytes=1, attention_heads=64, vocab_size=128256)
VLM = ResourceEstimate(weights_bytes=1, attention_heads=32, vision_heads=12, vocab_size=49155)


@pytest.mark.parametrize(
    ("backend", "params", "expected"),
    [
        ("vllm", ["--tensor-parallel-size", "4"], Parallel(tp=4)),
        ("vllm", ["-tp=2", "-pp 2", "--data-parallel-size=2"], Parallel(tp=2, pp=2, dp=2)),
        ("sglang", ["--tp-size 2", "--dp-size", "2"], Parallel(tp=2, dp=2)),
        ("sglang", ["--tp", "8"], Parallel(tp=8)),
        ("mindie", ["-tp", "4"], Parallel(tp=4)),
        ("llama-box", ["--tensor-parallel-size", "4"], Parallel()),  # not a parallel flag of llama.cpp
        ("vllm", ["--max-model-len", "4096"], Parallel()),
    ],
)
def test_sizes_as_each_backend_spells_them(backend: str, params: list[str], expected: Parallel) -> None:
    assert parallel_sizes(backend, params) == expected


def test_bad_sizes_are_errors() -> None:
    with pytest.raises(ValueError, match="invalid tensor parallel size 'two'"):
        parallel_sizes("vllm", ["-tp", "two"])
    with pytest.raises(ValueError, match="--pp-size must be a positive integer, got 0"):
        parallel_sizes("sglang", ["--pp-size", "0"])


def test_gpu_count_and_tp_for_a_count() -> None:
    assert Parallel().gpus is None and Parallel().tp_for(4) == 4
    sizes = Parallel(pp=2, dp=2)
    assert sizes.gpus == 4 and sizes.tp_for(4) == 1 and sizes.text() == "tp 1 × pp 2 × dp 2 = 4 GPUs"
    assert Parallel(tp=3).tp_for(8) == 3


def test_tp_must_divide_heads_vision_heads_and_vocabulary() -> None:
    assert tp_problem(LLAMA_70B, 1) is None and tp_problem(LLAMA_70B, 8) is None
    assert tp_problem(LLAMA_70B, 3) == "TP 3 does not divide the model's 64 attention heads"
    assert tp_problem(VLM, 8) == "TP 8 does not divide the model's 12 vision attention heads"
    assert tp_problem(VLM, 2) == "TP 2 does not divide the model's 49155 vocabulary entries"
    assert tp_problem(ResourceEstimate(weights_bytes=0), 3) is None  # nothing known, nothing to refuse


def test_count_problem_with_and_without_sizes() -> None:
    assert count_problem(LLAMA_70B, Parallel(), 4) is None
    assert count_problem(LLAMA_70B, Parallel(), 6) == "TP 6 does not divide the model's 64 attention heads"
    assert count_problem(LLAMA_70B, Parallel(tp=2, pp=2), 4) is None
    assert (
        count_problem(LLAMA_70B, Parallel(tp=2), 4) == "backend parameters ask for tp 2 × pp 1 × dp 1 = 2 GPUs, not 4"
    )


def test_selection_must_match_the_sizes() -> None:
    assert selection_problem("vllm", ["-tp", "2"], ["w:0", "w:1"]) is None
    assert selection_problem("vllm", [], ["w:0", "w:1", "w:2"]) is None  # no sizes: the count sets TP
    assert selection_problem("vllm", ["-tp", "2"], []) is None  # no selection: the scheduler picks 2 GPUs
    assert selection_problem("vllm", ["-tp", "4"], ["w:0", "w:1"]) == (
        "gpu_selector lists 2 GPUs but the backend parameters ask for tp 4 × pp 1 × dp 1 = 4 GPUs; "
        "select 4 GPUs or change the parallel sizes"
    )
