"""GGUF claims against the H100 data sheet (shared/reference/h100-claims.md): claim >= measured <= 110 %.

Each row is a llama-shaped F16 model served by llama-cpp-python with every layer on one H100; `measured`
is nvidia-smi's per-process memory after 20 chat requests. The files here are sparse GGUFs with the
same metadata and tensor sizes, placed by the real controller code on a worker whose status looks like
that H100, and launched through the worker's own launch-context code, so the test also pins that the
engine is started with every layer and the context the claim was computed for.
"""

from pathlib import Path

import pytest

from gpustack.scheduler.scheduler import apply_claim, schedule
from gpustack.scheduler.types import Candidate, Refusal, WorkerSnapshot
from gpustack.schemas.instances import ModelInstance, ModelInstancePublic
from gpustack.schemas.models import BackendEnum, Model, ModelPublic, SourceEnum
from gpustack.schemas.workers import BackendInfo, GPUDevice, MemoryInfo, Worker, WorkerState, WorkerStatus
from gpustack.server.controllers.scheduling import Estimated, _place, estimate_model
from gpustack.server.controllers.snapshots import model_snapshot, worker_snapshots
from gpustack.worker.backends.llama_box import llama_box_argv, llama_cpp_argv
from gpustack.worker.engine import launch_context

from ._gguf import LlamaShape, write_sparse_llama_gguf

MiB = 2**20
H100_TOTAL = 81559 * MiB  # nvidia-smi's memory.total of an H100 80GB HBM3
H100_RESERVED = 480 * MiB  # NVML v2 "reserved" (v1 counted it as used)

SHAPES = {
    "tinyllama-1.1b": LlamaShape(embd=2048, blocks=22, heads=32, kv_heads=4, ffn=5632, ctx=8192),
    "tinyllama-1.1b-ctx2048": LlamaShape(embd=2048, blocks=22, heads=32, kv_heads=4, ffn=5632, ctx=2048),
    "llama2-7b": LlamaShape(embd=4096, blocks=32, heads=32, kv_heads=32, ffn=11008, ctx=4096),
    "llama2-7b-gqa": LlamaShape(embd=4096, blocks=32, heads=32, kv_heads=8, ffn=11008, ctx=8192),
}

# (shape, --ctx-size given by the user or None for the default, engine n_ctx, nvidia-smi MiB after serving)
MEASURED = [
    ("tinyllama-1.1b", ["--ctx-size", "2048"], 2048, 2792),
    ("tinyllama-1.1b", [], 8192, 3320),
    ("tinyllama-1.1b-ctx2048", [], 2048, 2792),
    ("llama2-7b", ["--ctx-size", "2048"], 2048, 14436),
    ("llama2-7b", [], 4096, 15592),
    ("llama2-7b-gqa", ["--ctx-size", "2048"], 2048, 12118),
    ("llama2-7b-gqa", [], 8192, 13282),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("h100")
    return {name: write_sparse_llama_gguf(folder / f"{name}.gguf", shape) for name, shape in SHAPES.items()}


def _model(path: Path, params: list[str]) -> Model:
    return Model(
        id=1,
        name="m",
        source=SourceEnum.LOCAL_PATH,
        local_path=str(path),
        backend=BackendEnum.LLAMA_BOX,
        backend_parameters=params,
    )


def _h100_worker(total: int = H100_TOTAL) -> Worker:
    """A worker row as an H100 worker reports itself (default overhead and headroom)."""
    status = WorkerStatus(
        memory=MemoryInfo(total=512 * 2**30),
        gpu_devices=[
            GPUDevice(index=0, name="NVIDIA H100 80GB HBM3", memory_total=total, memory_reserved=H100_RESERVED)
        ],
        backends={"llama-box": BackendInfo(engine="llama-cpp-python 0.3.36 (GPU build)", gpu_offload=True)},
    )
    return Worker(id=1, name="h100", ip="10.0.0.1", state=WorkerState.READY, status=status.model_dump(mode="json"))


def _place_one(model: Model, estimated: Estimated, snapshots: tuple[WorkerSnapshot, ...]) -> ModelInstancePublic:
    result = schedule(model_snapshot(model), estimated.estimate, snapshots)
    assert isinstance(result, Candidate), getattr(result, "message", result)
    row = ModelInstance(id=7, name="m-1", model_id=1)
    _place(row, result, {1: "10.0.0.1"}, estimated)
    return ModelInstancePublic.model_validate(row, from_attributes=True)


def _argvs(model: Model, instance: ModelInstancePublic) -> tuple[list[str], list[str]]:
    public = ModelPublic.model_validate(model, from_attributes=True)
    ctx = launch_context(instance, public, model_path="/m.gguf", port=40000, gpu_vendor="nvidia", work_dir=Path("."))
    return llama_cpp_argv(ctx), llama_box_argv("llama-box", ctx)


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize(("shape", "params", "n_ctx", "measured_mib"), MEASURED)
def test_all_layers_claim_covers_measured_use_within_ten_percent(
    files: dict[str, Path], shape: str, params: list[str], n_ctx: int, measured_mib: int
) -> None:
    model = _model(files[shape], params)
    estimated = estimate_model(model)
    assert estimated.note is None
    instance = _place_one(model, estimated, worker_snapshots([_h100_worker()], []))
    claim = instance.computed_resource_claim
    assert claim is not None
    claimed = claim.vram[0]
    assert measured_mib * MiB <= claimed <= 1.10 * measured_mib * MiB, f"claim {claimed / MiB:.0f} MiB"
    assert claim.context_size == n_ctx
    assert claim.offload_layers == claim.total_layers == SHAPES[shape].blocks + 1
    assert sum(v for k, v in claim.terms.items() if k.endswith("_gpu")) == claimed
    assert claim.terms["weights_host"] == 32000 * SHAPES[shape].embd * 2  # token_embd stays on the host
    llama_cpp, llama_box = _argvs(model, instance)
    assert (_flag(llama_cpp, "--n_ctx"), _flag(llama_cpp, "--n_gpu_layers")) == (str(n_ctx), "-1")
    assert (_flag(llama_box, "--ctx-size"), _flag(llama_box, "-ngl")) == (str(n_ctx), "999")


@pytest.mark.parametrize("shape", ["tinyllama-1.1b", "llama2-7b", "llama2-7b-gqa"])
def test_half_the_layers_follow_the_same_terms(files: dict[str, Path], shape: str) -> None:
    model = _model(files[shape], [])
    est = estimate_model(model).estimate
    half = SHAPES[shape].blocks // 2
    per_block = est.per_block_bytes()
    gpu_part = 640 * MiB + est.offload_compute_bytes + half * per_block
    # a GPU with room for exactly half the blocks (after the driver's reserve and the 256 MiB headroom)
    total = gpu_part + H100_RESERVED + 256 * MiB + per_block // 2
    instance = _place_one(model, Estimated(est, None), worker_snapshots([_h100_worker(total)], []))
    claim = instance.computed_resource_claim
    assert claim is not None
    assert (claim.offload_layers, claim.total_layers) == (half, SHAPES[shape].blocks + 1)
    assert claim.vram == {0: gpu_part}
    host_blocks = SHAPES[shape].blocks - half
    assert claim.ram == est.host_weights_bytes + host_blocks * per_block + est.output_bytes + est.compute_bytes
    assert claim.terms["kv_cache_gpu"] == est.kv_cache_bytes * half // SHAPES[shape].blocks
    llama_cpp, llama_box = _argvs(model, instance)
    assert (_flag(llama_cpp, "--n_gpu_layers"), _flag(llama_box, "-ngl")) == (str(half), str(half))
    assert _flag(llama_cpp, "--n_ctx") == str(est.context_size)


def test_forty_replicas_pack_only_what_really_fits(files: dict[str, Path]) -> None:
    """The real-GPU run claimed 79.64 of 79.65 GiB for 40 replicas and 7 died of CUDA OOM."""
    model = _model(files["tinyllama-1.1b"], [])
    model.cpu_offloading = False
    estimated = estimate_model(model)
    snapshots = worker_snapshots([_h100_worker()], [])
    placed, refusals = 0, []
    for _ in range(40):
        result = schedule(model_snapshot(model), estimated.estimate, snapshots)
        if isinstance(result, Refusal):
            refusals.append(result.message)
            continue
        snapshots = apply_claim(snapshots, result)
        placed += 1
    measured_each = 3320 * MiB  # after serving, at the claimed context
    assert placed * measured_each <= H100_TOTAL - H100_RESERVED
    assert (placed, len(refusals)) == (24, 16)
    assert "needs 3.3 GiB VRAM, largest free GPU has" in refusals[0]
    assert snapshots[0].gpus[0].memory_claimed <= H100_TOTAL - H100_RESERVED - 256 * MiB


def test_with_cpu_offloading_the_overflow_goes_to_host_memory(files: dict[str, Path]) -> None:
    model = _model(files["tinyllama-1.1b"], [])
    estimated = estimate_model(model)
    snapshots = worker_snapshots([_h100_worker()], [])
    tiers = []
    for _ in range(40):
        result = schedule(model_snapshot(model), estimated.estimate, snapshots)
        assert isinstance(result, Candidate)
        snapshots = apply_claim(snapshots, result)
        tiers.append((result.offload_layers, bool(result.gpu_indexes)))
    assert tiers[:24] == [(23, True)] * 24
    assert all(layers < 23 for layers, _ in tiers[24:])  # partial offload or CPU, never a full claim
    assert snapshots[0].gpus[0].memory_claimed <= H100_TOTAL - H100_RESERVED - 256 * MiB
