"""Model categories read from the model's own files: a GGUF header or a Hugging Face config.json."""

import json
import logging
from pathlib import Path

from gpustack.scheduler.estimate.gguf_header import read_header

logger = logging.getLogger(__name__)

ENCODER_ARCHITECTURES = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "t5encoder", "modern-bert"})
POOLING_RANK = 4  # llama.cpp's LLAMA_POOLING_TYPE_RANK: a reranker head
EMBEDDING_POOLINGS = frozenset({1, 2, 3})  # mean, cls, last


def gguf_categories(path: Path) -> list[str]:
    """A reranker (rank pooling), an embedding model (an encoder), else a language model, which also
    embeds when the file sets a pooling type."""
    header = read_header(path)
    arch = str(header.metadata.get("general.architecture", ""))
    pooling = header.metadata.get(f"{arch}.pooling_type")
    if pooling == POOLING_RANK:
        return ["reranker"]
    if arch in ENCODER_ARCHITECTURES:
        return ["embedding"]
    return ["llm", "embedding"] if pooling in EMBEDDING_POOLINGS else ["llm"]


def config_categories(config: dict[str, object]) -> list[str]:
    """From config.json's `architectures`: *ForSequenceClassification → reranker, a bare *Model encoder →
    embedding, *ForCausalLM / *ForConditionalGeneration → llm; unknown → []."""
    architectures = config.get("architectures")
    if not isinstance(architectures, list) or not architectures:
        return []
    name = str(architectures[0])
    if name.endswith("ForSequenceClassification"):
        return ["reranker"]
    if name.endswith(("ForCausalLM", "ForConditionalGeneration")):
        return ["llm"]
    if name.endswith("Model"):
        return ["embedding"]
    return []


def categories_from_files(local_path: str) -> list[str]:
    """Categories of a local model the server can read; [] when it cannot tell (never raises)."""
    path = Path(local_path)
    try:
        if path.is_file() and path.suffix.lower() == ".gguf":
            return gguf_categories(path)
        config = path / "config.json"
        if config.is_file():
            data = json.loads(config.read_text())
            return config_categories(data) if isinstance(data, dict) else []
    except (OSError, ValueError) as exc:
        logger.info("cannot read the categories of %s: %s", local_path, exc)
    return []
