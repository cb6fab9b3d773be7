"""Backend pre-selection and categories from the known-model data."""

import pytest

from gpustack.engines.known_models import preselect

CASES = [
    (("/models/qwen2.5-0.5b-instruct-q4_k_m.gguf",), ("llama-box", [])),
    ((None, "Qwen2.5-7B-Instruct-Q4_K_M.GGUF", None, "Qwen/Qwen2.5-7B-Instruct-GGUF"), ("llama-box", [])),
    (("/models/bge-m3-q8_0.gguf",), ("llama-box", ["embedding"])),
    ((None, None, None, "Systran/faster-whisper-large-v3"), ("vox-box", ["speech_to_text"])),
    ((None, None, None, "Systran/faster-distil-whisper-medium.en"), ("vox-box", ["speech_to_text"])),
    ((None, None, None, None, "iic/CosyVoice2-0.5B"), ("vox-box", ["text_to_speech"])),
    ((None, None, None, "nari-labs/Dia-1.6B"), ("vox-box", ["text_to_speech"])),
    ((None, None, None, "Qwen/Qwen-Image"), ("sglang", ["image"])),
    ((None, None, None, "black-forest-labs/FLUX.1-dev"), ("sglang", ["image"])),
    ((None, None, None, "Qwen/Qwen3-8B"), ("vllm", [])),
    (("/models/Qwen3-Embedding-0.6B",), ("vllm", ["embedding"])),
    ((None, None, None, "Qwen/Qwen3-Reranker-4B"), ("vllm", ["reranker"])),
    ((None, None, None, "BAAI/bge-reranker-v2-m3"), ("vllm", ["reranker"])),
]


@pytest.mark.parametrize(("names", "expected"), CASES, ids=[str([n for n in c[0] if n]) for c in CASES])
def test_preselect(names: tuple[str | None, ...], expected: tuple[str, list[str]]) -> None:
    assert preselect(names) == expected
