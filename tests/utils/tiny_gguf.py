"""Writes a tiny, deterministic llama-architecture GGUF (random weights, SPM vocab, chat template)."""

import string
from pathlib import Path

import gguf
import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_WORDS = (
    "the of and to in is you that it was for on are with as be at this have from hello world test model tiny".split()
)


def _vocab() -> tuple[list[str], list[float], list[int]]:
    """Specials, 256 byte-fallback tokens, single characters, then word pieces (higher merge priority)."""
    T = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL, T.CONTROL, T.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [T.BYTE] * 256
    scores = [0.0] * len(tokens)
    for i, ch in enumerate(["\u2581", *string.ascii_letters, *string.digits, *string.punctuation]):
        tokens.append(ch)
        scores.append(-1000.0 - i)
        types.append(T.NORMAL)
    pieces: list[str] = []
    for word in _WORDS:
        for base in (word, "\u2581" + word):
            pieces += [base[:k] for k in range(2, len(base) + 1) if base[:k] not in tokens and base[:k] not in pieces]
    for i, piece in enumerate(pieces):
        tokens.append(piece)
        scores.append(-i / 10.0)
        types.append(T.NORMAL)
    return tokens, scores, [int(t) for t in types]


def _header(
    writer: gguf.GGUFWriter,
    n_vocab: int,
    shape: tuple[int, int, int, int, int, int],
    file_type: gguf.LlamaFileType,
) -> None:
    layers, hidden, heads, kv_heads, ffn, ctx = shape
    writer.add_name("tiny-random-llama")
    writer.add_context_length(ctx)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(file_type)
    writer.add_pooling_type(gguf.PoolingType.MEAN)


def _tokenizer(writer: gguf.GGUFWriter) -> int:
    tokens, scores, types = _vocab()
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    return len(tokens)


def write_tiny_gguf(
    path: Path,
    *,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    ffn: int | None = None,
    ctx: int = 2048,
    f16: bool = False,
) -> Path:
    """Random weights; matrices in F16 when `f16` (norms stay F32, as llama.cpp's converter writes them)."""
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads
    ffn = ffn or hidden * 2
    matrix = np.float16 if f16 else np.float32

    def rnd(*shape: int, scale: float = 0.02) -> np.ndarray:
        draw = rng.standard_normal(shape, dtype=np.float32 if f16 else np.float64)  # float64: same files as before
        return (draw * scale).astype(matrix)

    writer = gguf.GGUFWriter(str(path), "llama")
    n_vocab = _tokenizer(writer)
    file_type = gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32
    _header(writer, n_vocab, (layers, hidden, heads, kv_heads, ffn, ctx), file_type)
    ones = np.ones(hidden, dtype=np.float32)
    writer.add_tensor("token_embd.weight", rnd(n_vocab, hidden))
    for i in range(layers):
        blk = f"blk.{i}."
        writer.add_tensor(blk + "attn_norm.weight", ones)
        writer.add_tensor(blk + "attn_q.weight", rnd(heads * head_dim, hidden))
        writer.add_tensor(blk + "attn_k.weight", rnd(kv_heads * head_dim, hidden))
        writer.add_tensor(blk + "attn_v.weight", rnd(kv_heads * head_dim, hidden))
        writer.add_tensor(blk + "attn_output.weight", rnd(hidden, heads * head_dim))
        writer.add_tensor(blk + "ffn_norm.weight", ones)
        writer.add_tensor(blk + "ffn_gate.weight", rnd(ffn, hidden))
        writer.add_tensor(blk + "ffn_up.weight", rnd(ffn, hidden))
        writer.add_tensor(blk + "ffn_down.weight", rnd(hidden, ffn))
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", rnd(n_vocab, hidden, scale=1.0))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
