"""Known models as data: which backend and categories a model gets when the user names neither."""

import re
from collections.abc import Iterable

# Name patterns (matched against the repo id or path, case-insensitively) → (backend, category).
# Speech models are VoxBox's supported list (seed 002); image models are the ones SGLang Diffusion serves.
KNOWN_MODELS: tuple[tuple[str, str, str], ...] = (
    (r"faster-(distil-)?whisper", "vox-box", "speech_to_text"),
    (r"(^|/)whisper-", "vox-box", "speech_to_text"),
    (r"cosyvoice", "vox-box", "text_to_speech"),
    (r"(^|/)dia-1\.6b", "vox-box", "text_to_speech"),
    (r"qwen-image", "sglang", "image"),
    (r"flux\.1-(dev|schnell)", "sglang", "image"),
    (r"stable-diffusion", "sglang", "image"),
)
# Name hints for text models whose category is not "llm" (vLLM serves them with its pooling runner).
CATEGORY_HINTS: tuple[tuple[str, str], ...] = (
    (r"rerank", "reranker"),
    (r"embed|(^|/)bge-|(^|/)e5-|(^|/)gte-", "embedding"),
)
GGUF = re.compile(r"\.gguf$", re.IGNORECASE)


def _names(names: Iterable[str | None]) -> list[str]:
    return [n.lower() for n in names if n]


def is_gguf(names: Iterable[str | None]) -> bool:
    """A GGUF source: its file name (local path, Hugging Face or ModelScope file) ends in .gguf."""
    return any(GGUF.search(n) for n in _names(names))


def known_model(names: Iterable[str | None]) -> tuple[str, str] | None:
    """(backend, category) of a known speech or image model, else None."""
    for name in _names(names):
        for pattern, backend, category in KNOWN_MODELS:
            if re.search(pattern, name):
                return backend, category
    return None


def preselect(names: Iterable[str | None]) -> tuple[str, list[str]]:
    """The backend and categories for a model created without them: GGUF → llama-box; a known speech
    model → vox-box; a known image model → sglang; else vllm. Categories come only from what is known (a
    listed model, an embedding/reranker name); none means "unknown" and the gateway tries every endpoint."""
    names = list(names)
    hint = _hint(names)
    if is_gguf(names):
        return "llama-box", [hint] if hint else []
    if known := known_model(names):
        return known[0], [known[1]]
    return "vllm", [hint] if hint else []


def _hint(names: list[str | None]) -> str | None:
    for name in _names(names):
        for pattern, category in CATEGORY_HINTS:
            if re.search(pattern, name):
                return category
    return None
