"""Sparse Hugging Face model directories: a real config.json and safetensors headers, data left as holes."""

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BYTES = {"BF16": 2, "F16": 2, "F32": 4}


@dataclass(frozen=True)
class HFShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    max_context: int
    dtype: str = "BF16"
    architecture: str = "LlamaForCausalLM"
    experts: int = 0  # > 0: a Mixtral-style MoE, `experts` FFNs of size `ffn` per layer and a router


# Realistic shapes: Llama-3 8B/70B, Mixtral-8x7B, bge-m3, bge-reranker-v2-m3, CosyVoice2-0.5B's language model
# and SmolVLM (a 12-head SigLIP vision tower and a 49155-entry vocabulary).
LLAMA3_8B = HFShape(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, max_context=8192)
LLAMA3_70B = HFShape(hidden=8192, layers=80, heads=64, kv_heads=8, ffn=28672, vocab=128256, max_context=8192)
MIXTRAL = HFShape(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=32000, max_context=32768,
                  architecture="MixtralForCausalLM", experts=8)  # fmt: skip
BGE_M3 = HFShape(hidden=1024, layers=24, heads=16, kv_heads=16, ffn=4096, vocab=250002, max_context=8194,
                 dtype="F32", architecture="XLMRobertaModel")  # fmt: skip
RERANKER = HFShape(hidden=1024, layers=24, heads=16, kv_heads=16, ffn=4096, vocab=250002, max_context=8194,
                   dtype="F32", architecture="XLMRobertaForSequenceClassification")  # fmt: skip
TTS_LM = HFShape(hidden=896, layers=24, heads=14, kv_heads=2, ffn=4864, vocab=151936, max_context=32768,
                 architecture="Qwen2ForCausalLM")  # fmt: skip
SMOLVLM = HFShape(hidden=2048, layers=24, heads=32, kv_heads=32, ffn=8192, vocab=49155, max_context=16384,
                  architecture="Idefics3ForConditionalGeneration")  # fmt: skip
SMOLVLM_VISION = {"vision_config": {"hidden_size": 1152, "num_attention_heads": 12}}  # SigLIP tower, 12 heads


def llama_tensors(shape: HFShape) -> dict[str, list[int]]:
    head_dim = shape.hidden // shape.heads
    kv = shape.kv_heads * head_dim
    tensors = {"model.embed_tokens.weight": [shape.vocab, shape.hidden], "lm_head.weight": [shape.vocab, shape.hidden]}
    for i in range(shape.layers):
        p = f"model.layers.{i}."
        tensors.update({
            p + "self_attn.q_proj.weight": [shape.hidden, shape.hidden],
            p + "self_attn.k_proj.weight": [kv, shape.hidden],
            p + "self_attn.v_proj.weight": [kv, shape.hidden],
            p + "self_attn.o_proj.weight": [shape.hidden, shape.hidden],
            p + "input_layernorm.weight": [shape.hidden],
            p + "post_attention_layernorm.weight": [shape.hidden],
        })  # fmt: skip
        tensors.update(_ffn_tensors(shape, p))
    tensors["model.norm.weight"] = [shape.hidden]
    return tensors


def _ffn_tensors(shape: HFShape, prefix: str) -> dict[str, list[int]]:
    """One layer's dense MLP, or the router and every expert of a Mixtral-style MoE layer."""
    if not shape.experts:
        return {
            prefix + "mlp.gate_proj.weight": [shape.ffn, shape.hidden],
            prefix + "mlp.up_proj.weight": [shape.ffn, shape.hidden],
            prefix + "mlp.down_proj.weight": [shape.hidden, shape.ffn],
        }
    moe = prefix + "block_sparse_moe."
    tensors = {moe + "gate.weight": [shape.experts, shape.hidden]}
    for e in range(shape.experts):
        tensors.update({
            f"{moe}experts.{e}.w1.weight": [shape.ffn, shape.hidden],
            f"{moe}experts.{e}.w2.weight": [shape.hidden, shape.ffn],
            f"{moe}experts.{e}.w3.weight": [shape.ffn, shape.hidden],
        })  # fmt: skip
    return tensors


def write_sparse_safetensors(path: Path, tensors: dict[str, list[int]], dtype: str) -> int:
    """One safetensors file whose data region is a hole; returns the tensors' byte size."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dims in tensors.items():
        size = BYTES[dtype]
        for d in dims:
            size *= d
        header[name] = {"dtype": dtype, "shape": dims, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return offset


def write_model_dir(directory: Path, shape: HFShape, shards: int = 2, extra: dict[str, Any] | None = None) -> int:
    """config.json (with `extra` keys, e.g. a vision_config) plus `shards` sparse safetensors files; returns
    the weights' byte size."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": [shape.architecture],
        "hidden_size": shape.hidden,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "intermediate_size": shape.ffn,
        "vocab_size": shape.vocab,
        "max_position_embeddings": shape.max_context,
        "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[shape.dtype],
        **({"num_local_experts": shape.experts, "num_experts_per_tok": 2} if shape.experts else {}),
        **(extra or {}),
    }
    (directory / "config.json").write_text(json.dumps(config))
    items = list(llama_tensors(shape).items())
    total = 0
    for i in range(shards):
        part = dict(items[i::shards])
        total += write_sparse_safetensors(
            directory / f"model-{i + 1:05d}-of-{shards:05d}.safetensors", part, shape.dtype
        )
    return total
