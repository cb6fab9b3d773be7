"""GGUF backend: the llama-box binary when on PATH, else the llama-cpp-python server (CPU fallback)."""

import importlib.util
import shutil
import sys
from collections.abc import Iterable

from gpustack.worker.backends._common import (
    BackendUnavailableError,
    base_spec,
    group_flags,
    is_flag,
    merge_args,
    normalize_params,
)
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

ALL_LAYERS_LLAMA_BOX = 999  # llama.cpp clamps -ngl to the model's layer count (blocks + output layer)
ALL_LAYERS_LLAMA_CPP = -1  # llama_cpp.server: -1 moves every layer, the output layer included, to the GPU
DEFAULT_CTX = 8192  # the scheduler's rule when it knows nothing better: min(training context, 8192)

LLAMA_BOX_ALIASES = (
    ("--host",),
    ("--port",),
    ("--model", "-m"),
    ("--alias", "-a"),
    ("--gpu-layers", "-ngl", "--n-gpu-layers"),
    ("--tensor-split", "-ts"),
    ("--ctx-size", "-c"),
    ("--rpc",),
)
# llama-box / llama.cpp spellings → llama_cpp.server's (which only knows `--snake_case VALUE`).
LLAMA_CPP_NAMES = {
    "-m": "--model",
    "-a": "--model_alias",
    "--alias": "--model_alias",
    "-ngl": "--n_gpu_layers",
    "--gpu-layers": "--n_gpu_layers",
    "-ts": "--tensor_split",
    "-c": "--n_ctx",
    "--ctx-size": "--n_ctx",
    "-t": "--n_threads",
    "--threads": "--n_threads",
    "-tb": "--n_threads_batch",
    "--threads-batch": "--n_threads_batch",
    "-b": "--n_batch",
    "--batch-size": "--n_batch",
    "-ub": "--n_ubatch",
    "--ubatch-size": "--n_ubatch",
    "-s": "--seed",
    "--api-key": "--api_key",
}
PROTECTED = ("--host", "--port", "--model")


def _gpu_layers(ctx: LaunchContext, all_layers: int) -> int:
    """0 without GPUs; `all_layers` when every layer is placed (or nothing was said); else the count.

    The scheduler counts layers as llama.cpp does (blocks + the output layer), so a partial placement
    of n layers is `n` as it is; a claim of all layers becomes the engine's "every layer" value.
    """
    if not ctx.gpu_indexes:
        return 0
    if ctx.offload_layers is None or (ctx.total_layers and ctx.offload_layers >= ctx.total_layers):
        return all_layers
    return ctx.offload_layers


def _context(ctx: LaunchContext) -> str:
    return str(ctx.context_size or DEFAULT_CTX)


def _split(ctx: LaunchContext) -> list[str]:
    """Layers per device as the scheduler placed them (even when it did not say), for multi-device runs;
    with RPC servers the devices are the RPC servers first, then the local GPUs (llama.cpp's order)."""
    devices = len(ctx.rpc_servers) + len(ctx.gpu_indexes)
    if devices >= 2 and len(ctx.tensor_split) == devices:
        return [str(n) for n in ctx.tensor_split]
    if ctx.rpc_servers or len(ctx.gpu_indexes) < 2:
        return []  # with RPC servers but no recorded split, llama.cpp splits by each device's free memory
    return ["1"] * devices


def llama_box_argv(binary: str, ctx: LaunchContext) -> list[str]:
    """`llama-box --host H --port P -m MODEL --alias NAME -ngl N --ctx-size C [--tensor-split a,b] --embeddings`.

    llama-box's --embeddings only enables /v1/embeddings; chat and completions keep working.
    """
    defaults = [
        "--host", ctx.host,
        "--port", str(ctx.port),
        "-m", ctx.model_path,
        "--alias", ctx.model_name,
        "-ngl", str(_gpu_layers(ctx, ALL_LAYERS_LLAMA_BOX)),
        "--ctx-size", _context(ctx),
        "--embeddings",
    ]  # fmt: skip
    if split := _split(ctx):
        defaults += ["--tensor-split", ",".join(split)]
    if ctx.rpc_servers:
        defaults += ["--rpc", ",".join(ctx.rpc_servers)]
    return [binary, *merge_args(defaults, ctx.backend_parameters, LLAMA_BOX_ALIASES, PROTECTED)]


def to_llama_cpp_params(params: Iterable[str]) -> list[str]:
    """Rename llama-box style flags for llama_cpp.server (`--ctx-size 4096` → `--n_ctx 4096`,
    `--tensor-split 3,1` → `--tensor_split 3 1`); other flags get `-` → `_` in their names."""
    out: list[str] = []
    for group in group_flags(normalize_params(params)):
        head = group[0]
        if not is_flag(head):
            out.extend(group)
            continue
        name, eq, value = head.partition("=")
        name = LLAMA_CPP_NAMES.get(name) or "--" + name.lstrip("-").replace("-", "_")
        values = ([value] if eq else []) + group[1:]
        if name == "--tensor_split":
            values = [v for item in values for v in item.split(",") if v]
        out.extend([name, *values])
    return out


def llama_cpp_argv(ctx: LaunchContext) -> list[str]:
    """`python -m gpustack.engines.llama_cpp_server --model M --host H --port P --model_alias NAME --n_gpu_layers N
    --n_ctx C --embedding true` (verified with llama-cpp-python 0.3.36: chat, completions and embeddings all
    work on one server started with --embedding true). It stays verbose: `--verbose false` would drop its
    per-request timings but also sends the model loader's output, a CUDA out-of-memory included, to
    /dev/null; the worker rotates instance logs by size instead. The module is llama_cpp.server with
    `stream_options.include_usage` honoured (exact usage at the end of a stream, for metering)."""
    defaults = [
        "--model", ctx.model_path,
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--model_alias", ctx.model_name,
        "--n_gpu_layers", str(_gpu_layers(ctx, ALL_LAYERS_LLAMA_CPP)),
        "--n_ctx", _context(ctx),
        "--embedding", "true",
    ]  # fmt: skip
    if split := _split(ctx):
        defaults += ["--tensor_split", *split]
    merged = merge_args(defaults, to_llama_cpp_params(ctx.backend_parameters), (), PROTECTED)
    return [sys.executable, "-m", "gpustack.engines.llama_cpp_server", *merged]


@register("llama-box")
def build(ctx: LaunchContext) -> LaunchSpec:
    """llama-box from PATH (or inside ctx.image_name); otherwise llama-cpp-python's server."""
    if ctx.image_name:
        argv = llama_box_argv("llama-box", ctx)
    elif binary := shutil.which("llama-box"):
        argv = llama_box_argv(binary, ctx)
    elif importlib.util.find_spec("llama_cpp") is not None:
        argv = llama_cpp_argv(ctx)
    else:
        raise BackendUnavailableError(
            "no `llama-box` on PATH and llama-cpp-python is not installed on this worker: install one "
            "(pip install 'llama-cpp-python[server]') or deploy with an image to use the docker runtime"
        )
    return base_spec(ctx, argv)
