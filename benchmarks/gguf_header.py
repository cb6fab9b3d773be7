"""Reading a GGUF for the scheduler: header-only reader vs gguf's GGUFReader, on a 152k-token vocabulary.

Writes a small llama GGUF whose tokenizer has as many tokens as Qwen2's (the size that made GGUFReader take
seconds), then times `read_header` and `GGUFReader` on it in the same process and prints the ratio.
Run: `.venv/bin/python benchmarks/gguf_header.py`.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpustack.scheduler.estimate.gguf_header import read_header  # noqa: E402


def write_big_vocab_gguf(path: Path, vocab: int) -> Path:
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_embedding_length(8)
    writer.add_head_count(1)
    writer.add_token_list([f"token-{i}" for i in range(vocab)])
    writer.add_token_scores([0.0] * vocab)
    writer.add_token_types([1] * vocab)
    writer.add_tensor("token_embd.weight", np.zeros((vocab, 8), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _best_of(runs: int, fn: object) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=152064)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_big_vocab_gguf(Path(tmp) / "vocab.gguf", args.vocab)
        header = _best_of(args.runs, lambda: read_header(path))
        full = _best_of(args.runs, lambda: GGUFReader(path))
    print(f"vocabulary: {args.vocab} tokens; best of {args.runs} runs")
    print(f"GGUFReader : {full * 1000:8.1f} ms")
    print(f"read_header: {header * 1000:8.1f} ms")
    print(f"speed-up (GGUFReader / read_header): {full / header:.1f}x")


if __name__ == "__main__":
    main()
