"""Fit rules on realistic clusters and models, through the controller's own path.

Each row deploys a model (a real config.json + sparse safetensors directory, or a sparse Q4_K GGUF) with a
backend and parameters on a cluster of real `Worker` rows: the spec is validated by `ModelCreate`, the estimate
comes from `estimate_model`, the snapshots from `worker_snapshots` and the decision from `schedule`, exactly as
the scheduling controller and `POST /v2/model-evaluations` do. Every row names the expected placement (worker,
GPU indexes, claim per GPU) or a substring of the refusal.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from gpustack.scheduler.scheduler import placement_tier, schedule
from gpustack.scheduler.types import Candidate, Refusal
from gpustack.schemas.models import Model, ModelCreate, source_key
from gpustack.schemas.workers import GPUDevice, MemoryInfo, Worker, WorkerStatus
from gpustack.server.controllers.scheduling import Cluster, estimate_model
from gpustack.server.controllers.snapshots import worker_snapshots

from ._gguf import LlamaShape, write_sparse_llama_gguf
from ._safetensors import (
    BGE_M3,
    LLAMA3_8B,
    LLAMA3_70B,
    MIXTRAL,
    RERANKER,
    SMOLVLM,
    SMOLVLM_VISION,
    TTS_LM,
    write_model_dir,
)

GiB = 2**30

# --- clusters: (name, [(gpu name, GiB, used GiB)], vendor, RAM GiB, state) per worker -------------------------------


@dataclass(frozen=True)
class W:
    name: str
    gpus: Sequence[tuple[str, float, float]]
    vendor: str = "nvidia"
    ram: int = 64
    state: str = "ready"
    labels: dict[str, str] = field(default_factory=dict)


def _x(n: int, name: str, size: float, used: float = 0) -> list[tuple[str, float, float]]:
    return [(name, size, used)] * n


CLUSTERS: dict[str, list[W]] = {
    "1x4090": [W("rtx4090", _x(1, "RTX 4090", 24))],
    "1x4090-busy": [W("rtx4090", _x(1, "RTX 4090", 24, used=6))],
    "1x4090-full": [W("rtx4090", _x(1, "RTX 4090", 24, used=23.5))],
    "8xA100": [W("a100", _x(8, "A100-SXM4-80GB", 80), ram=1024)],
    "2x8xH100": [
        W("h100-a", _x(8, "H100 80GB HBM3", 80), ram=2048),
        W("h100-b", _x(8, "H100 80GB HBM3", 80), ram=2048),
    ],
    "2x8xH100-a-half-used": [
        W("h100-a", _x(4, "H100 80GB HBM3", 80, used=70) + _x(4, "H100 80GB HBM3", 80), ram=2048),
        W("h100-b", _x(8, "H100 80GB HBM3", 80), ram=2048),
    ],
    "4x4090": [W("rtx4090x4", _x(4, "RTX 4090", 24))],
    "4090+4080": [W("mixed", [("RTX 4090", 24, 0), ("RTX 4080", 16, 0)])],
    "4090-busy+4080": [W("mixed", [("RTX 4090", 24, 6), ("RTX 4080", 16, 0)])],
    "910Bx8": [W("ascend", _x(8, "Ascend 910B", 64), vendor="huawei", ram=1024)],
    "fleet": [
        W("aaa-4080", _x(1, "RTX 4080", 16)),
        W("rtx4090", _x(1, "RTX 4090", 24)),
        W("mixed", [("RTX 4090", 24, 0), ("RTX 4080", 16, 0)]),
        W("a100-down", _x(8, "A100-SXM4-80GB", 80), state="not_ready"),
    ],
}


def _worker_row(wid: int, w: W) -> Worker:
    devices = [
        GPUDevice(vendor=w.vendor, index=i, name=name, memory_total=int(size * GiB), memory_used=int(used * GiB))
        for i, (name, size, used) in enumerate(w.gpus)
    ]
    status = WorkerStatus(memory=MemoryInfo(total=w.ram * GiB), gpu_devices=devices)
    return Worker(id=wid, name=w.name, state=w.state, labels=w.labels, status=status.model_dump(mode="json"))


# --- models: Llama-3 8B/70B, Mixtral-8x7B, bge-m3, bge-reranker-v2-m3, a TTS LM, a small VLM, Q4_K GGUFs ----------

GGUF_8B = LlamaShape(embd=4096, blocks=32, heads=32, kv_heads=8, ffn=14336, ctx=8192, vocab=128256, q4_k=True)
GGUF_70B = LlamaShape(embd=8192, blocks=80, heads=64, kv_heads=8, ffn=28672, ctx=8192, vocab=128256, q4_k=True)

CATEGORIES = {"bge-m3": ["embedding"], "reranker": ["reranker"], "tts": ["text_to_speech"]}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    dirs = {"8b": LLAMA3_8B, "70b": LLAMA3_70B, "mixtral": MIXTRAL, "bge-m3": BGE_M3, "reranker": RERANKER,
            "tts": TTS_LM}  # fmt: skip
    for name, shape in dirs.items():
        write_model_dir(root / name, shape)
    write_model_dir(root / "vlm", SMOLVLM, extra=SMOLVLM_VISION)
    write_sparse_llama_gguf(root / "8b-q4.gguf", GGUF_8B)
    write_sparse_llama_gguf(root / "70b-q4.gguf", GGUF_70B)
    out = {name: str(root / name) for name in [*dirs, "vlm"]}
    return out | {"8b-q4": str(root / "8b-q4.gguf"), "70b-q4": str(root / "70b-q4.gguf")}


def model_row(paths: dict[str, str], name: str, backend: str, params: Sequence[str], spec: dict[str, Any]) -> Model:
    """A model as `POST /v2/models` stores it (validated by ModelCreate)."""
    body = {"name": "m", "local_path": paths[name], "backend": backend, "backend_parameters": list(params),
            "categories": CATEGORIES.get(name, ["llm"]), **spec}  # fmt: skip
    return Model(id=1, **ModelCreate.model_validate(body).model_dump())


def place(model: Model, cluster: str, files_on: Sequence[str] = ()) -> Candidate | Refusal:
    """The controller's path: estimate_model, worker snapshots from Worker rows, the model snapshot, schedule."""
    rows = [_worker_row(i + 1, w) for i, w in enumerate(CLUSTERS[cluster])]
    holders = frozenset(r.id for r in rows if r.name in files_on)  # type: ignore[misc]
    estimated = estimate_model(model)
    assert estimated.note is None, estimated.note  # every row is measured, none placed blind
    cluster_state = Cluster(
        snapshots=worker_snapshots(rows, []),
        per_model=Counter(),
        ips={},
        files={(str(model.source), source_key(model)): holders},
    )
    snapshot = cluster_state.snapshot_of(model)
    return schedule(snapshot, estimated.estimate, cluster_state.snapshots, model_instances_per_worker={})


# --- the table -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    cluster: str
    model: str
    backend: str
    params: tuple[str, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None  # expected placement...
    gpus: tuple[int, ...] | None = None
    claim: float | None = None  # GiB on each GPU
    tier: int = 0  # 0 all on GPUs, 1 partial offload, 2 CPU
    note: str | None = None  # substring of the placement's note
    reason: str | None = None  # ...or a substring of the refusal
    files_on: tuple[str, ...] = ()


GMU = 0.9 * 24  # 21.6 GiB: vLLM's default claim on a 4090
ROWS = [
    # 1. vLLM: the fraction rule, claims, TP divisibility, tp × pp × dp
    Row("vllm-8b-one-4090", "1x4090", "8b", "vllm", worker="rtx4090", gpus=(0,), claim=GMU),
    Row("vllm-8b-4090-short-of-0.9", "1x4090-busy", "8b", "vllm",
        reason="GPU 0 RTX 4090: 17.8 GiB allocatable < 0.9 × 24.0 GiB"),
    Row("vllm-users-gmu-0.95", "1x4090", "8b", "vllm", ("--gpu-memory-utilization", "0.95"), gpus=(0,), claim=22.8),
    Row("vllm-users-gmu-0.99-not-allocatable", "1x4090", "8b", "vllm", ("--gpu-memory-utilization=0.99",),
        reason="23.8 GiB allocatable < 0.99 × 24.0 GiB"),
    Row("vllm-70b-fits-nowhere-on-4090", "1x4090", "70b", "vllm",
        reason="needs 159.7 GiB VRAM; its 1 qualifying GPU holds 21.6 GiB at 0.9 of each"),
    Row("vllm-8b-on-a100s-takes-one", "8xA100", "8b", "vllm", worker="a100", gpus=(0,), claim=72),
    Row("vllm-70b-skips-tp3-takes-four", "8xA100", "70b", "vllm", gpus=(0, 1, 2, 3), claim=72),
    Row("vllm-70b-tp3-refused", "8xA100", "70b", "vllm", ("--tensor-parallel-size", "3"),
        reason="TP 3 does not divide the model's 64 attention heads"),
    Row("vllm-70b-tp8", "8xA100", "70b", "vllm", ("-tp", "8"), gpus=tuple(range(8)), claim=72),
    Row("vllm-70b-tp2-pp2", "8xA100", "70b", "vllm", ("--tensor-parallel-size 2", "--pipeline-parallel-size 2"),
        gpus=(0, 1, 2, 3), claim=72),
    Row("vllm-70b-tp2-too-small", "8xA100", "70b", "vllm", ("--tensor-parallel-size=2",),
        reason="the 2 GPUs the backend parameters ask for hold 144.0 GiB at 0.9 of each"),
    Row("vllm-70b-tp16-more-than-a-worker", "2x8xH100", "70b", "vllm", ("-tp", "16"),
        reason="backend parameters ask for tp 16 × pp 1 × dp 1 = 16 GPUs, 8 qualify here"),
    Row("vllm-70b-refused-on-4x4090", "4x4090", "70b", "vllm",
        reason="needs 159.7 GiB VRAM; its 4 qualifying GPUs hold 86.4 GiB at 0.9 of each"),
    Row("vllm-moe-two-a100s", "8xA100", "mixtral", "vllm", gpus=(0, 1), claim=72),
    Row("vllm-moe-too-big-for-mixed", "4090+4080", "mixtral", "vllm", reason="its 2 qualifying GPUs hold 36.0 GiB"),
    Row("vllm-8b-mixed-takes-the-4090", "4090+4080", "8b", "vllm", gpus=(0,), claim=GMU),
    Row("vllm-8b-mixed-4090-busy", "4090-busy+4080", "8b", "vllm",
        reason="its 1 qualifying GPU holds 14.4 GiB at 0.9 of each; GPU 0 RTX 4090: 17.8 GiB allocatable"),
    Row("vllm-embedding-claims-estimate", "1x4090-busy", "bge-m3", "vllm", gpus=(0,), claim=4.59),
    Row("vllm-reranker-claims-estimate", "1x4090-busy", "reranker", "vllm", gpus=(0,), claim=4.59),
    Row("vllm-vlm-one-gpu", "8xA100", "vlm", "vllm", gpus=(0,), claim=72),
    Row("vllm-vlm-tp8-vision-heads", "8xA100", "vlm", "vllm", ("-tp", "8"),
        reason="TP 8 does not divide the model's 12 vision attention heads"),
    Row("vllm-vlm-tp2-vocab", "8xA100", "vlm", "vllm", ("-tp", "2"),
        reason="TP 2 does not divide the model's 49155 vocabulary entries"),
    Row("vllm-manual-four", "8xA100", "70b", "vllm", spec={"gpu_selector": [f"a100:{i}" for i in (4, 5, 6, 7)]},
        gpus=(4, 5, 6, 7), claim=72),
    Row("vllm-manual-two-overcommits", "8xA100", "70b", "vllm", spec={"gpu_selector": ["a100:0", "a100:1"]},
        gpus=(0, 1), claim=72, note="the selected GPUs hold 144.0 GiB, the model needs 159.7 GiB"),
    Row("vllm-manual-busy-gpu-overcommits", "1x4090-busy", "8b", "vllm", spec={"gpu_selector": ["rtx4090:0"]},
        gpus=(0,), claim=GMU, note="GPU 0 RTX 4090: 17.8 GiB allocatable < 0.9 × 24.0 GiB"),
    Row("vllm-manual-three-tp", "8xA100", "70b", "vllm", spec={"gpu_selector": ["a100:0", "a100:1", "a100:2"]},
        reason="the gpu_selector picks 3 GPUs: TP 3 does not divide the model's 64 attention heads"),
    Row("vllm-manual-matches-tp2-pp2", "8xA100", "70b", "vllm", ("-tp", "2", "-pp", "2"),
        spec={"gpu_selector": [f"a100:{i}" for i in range(4)]}, gpus=(0, 1, 2, 3), claim=72),
    # 2. SGLang, MindIE, VoxBox
    Row("sglang-8b-one-4090", "1x4090", "8b", "sglang", gpus=(0,), claim=GMU),
    Row("sglang-mem-fraction-0.8-too-small", "1x4090", "8b", "sglang", ("--mem-fraction-static", "0.8"),
        reason="needs 19.9 GiB VRAM; its 1 qualifying GPU holds 19.2 GiB at 0.8 of each"),
    Row("sglang-70b-tp-size-3", "8xA100", "70b", "sglang", ("--tp-size", "3"),
        reason="TP 3 does not divide the model's 64 attention heads"),
    Row("sglang-70b-four", "2x8xH100", "70b", "sglang", worker="h100-a", gpus=(0, 1, 2, 3), claim=72),
    Row("mindie-70b-four-npus", "910Bx8", "70b", "mindie", worker="ascend", gpus=(0, 1, 2, 3), claim=57.6),
    Row("mindie-npu-fraction-0.8", "910Bx8", "70b", "mindie", ("--npu-memory-fraction", "0.8"),
        gpus=(0, 1, 2, 3), claim=51.2),
    Row("mindie-npu-fraction-0.5-skips-tp6", "910Bx8", "70b", "mindie", ("--npu-memory-fraction", "0.5"),
        gpus=tuple(range(8)), claim=32),
    Row("mindie-not-on-nvidia", "1x4090", "8b", "mindie",
        reason="MindIE runs only on Ascend NPUs; this worker has nvidia RTX 4090 GPUs"),
    Row("voxbox-tts-on-gpu", "1x4090", "tts", "vox-box", gpus=(0,), claim=5.73 + 0.625),
    Row("voxbox-tts-cpu-when-gpu-full", "1x4090-full", "tts", "vox-box", gpus=(), tier=2,
        note="placed on the CPU: needs 6.4 GiB VRAM, largest free GPU has 256.0 MiB"),
    Row("voxbox-tts-no-cpu-offloading", "1x4090-full", "tts", "vox-box", spec={"cpu_offloading": False},
        reason="CPU offloading is disabled"),
    Row("voxbox-tts-cpu-on-ascend", "910Bx8", "tts", "vox-box", gpus=(), tier=2,
        note="VoxBox uses NVIDIA GPUs only, this worker has huawei Ascend 910B"),
    # 3. strategy order for GGUF: one GPU, layer split over the fewest GPUs, manual GPUs, partial offload, CPU
    Row("gguf-8b-q4-one-4090", "1x4090", "8b-q4", "llama-box", gpus=(0,)),
    Row("gguf-70b-q4-fewest-two-of-four-4090s", "4x4090", "70b-q4", "llama-box", gpus=(0, 1)),
    Row("gguf-70b-q4-one-a100", "8xA100", "70b-q4", "llama-box", gpus=(0,)),
    Row("gguf-70b-q4-manual-two-a100s", "8xA100", "70b-q4", "llama-box", spec={"gpu_selector": ["a100:2", "a100:5"]},
        gpus=(2, 5)),
    Row("gguf-70b-q4-partial-on-4090", "1x4090", "70b-q4", "llama-box", gpus=(0,), tier=1),
    Row("gguf-70b-q4-partial-on-mixed", "4090+4080", "70b-q4", "llama-box", gpus=(0, 1), tier=1),
    Row("gguf-70b-q4-no-offloading", "1x4090", "70b-q4", "llama-box", spec={"cpu_offloading": False},
        reason="CPU offloading is disabled"),
    Row("gguf-8b-q4-cpu-when-gpu-full", "1x4090-full", "8b-q4", "llama-box", gpus=(), tier=2),
    # 4. filters and reasons
    Row("label-not-matched", "1x4090", "8b", "vllm", spec={"worker_selector": {"gpu": "a100"}},
        reason="label selector wants gpu=a100, worker has no label 'gpu'"),
    # binpack / spread / file locality on one of two H100 workers
    Row("spread-takes-the-idle-h100", "2x8xH100-a-half-used", "70b", "vllm", worker="h100-b", gpus=(0, 1, 2, 3)),
    Row("binpack-fills-the-used-h100", "2x8xH100-a-half-used", "70b", "vllm", spec={"placement_strategy": "binpack"},
        worker="h100-a", gpus=(4, 5, 6, 7)),
    Row("files-break-the-tie", "2x8xH100", "70b", "vllm", worker="h100-b", gpus=(0, 1, 2, 3), files_on=("h100-b",)),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_row(row: Row, paths: dict[str, str]) -> None:
    result = place(model_row(paths, row.model, row.backend, row.params, row.spec), row.cluster, row.files_on)
    if row.reason is not None:
        assert isinstance(result, Refusal), f"expected a refusal, got {result}"
        assert row.reason in result.message, result.message
        return
    assert isinstance(result, Candidate), result.message
    if row.worker is not None:
        assert result.worker_name == row.worker
    assert result.gpu_indexes == row.gpus
    assert placement_tier(result) == row.tier
    if row.claim is not None:
        assert set(result.vram) == set(row.gpus or ())
        for index, claim in result.vram.items():
            assert claim == pytest.approx(row.claim * GiB, abs=0.01 * GiB), f"GPU {index}"
    if row.note is not None:
        assert row.note in result.note, result.note
    else:
        assert result.note == ""


def test_whole_card_claims_tell_the_engine_the_fraction(paths: dict[str, str]) -> None:
    for backend, params, fraction in (("vllm", (), 0.9), ("sglang", ("--mem-fraction-static", "0.85"), 0.85),
                                      ("mindie", ("--npu-memory-fraction", "0.8"), 0.8)):  # fmt: skip
        cluster = "910Bx8" if backend == "mindie" else "1x4090"
        chosen = place(model_row(paths, "8b", backend, params, {}), cluster)
        assert isinstance(chosen, Candidate) and chosen.vram_utilization == fraction


def test_embedding_fraction_is_its_share_of_the_card(paths: dict[str, str]) -> None:
    chosen = place(model_row(paths, "bge-m3", "vllm", (), {}), "1x4090")
    assert isinstance(chosen, Candidate)
    assert chosen.vram_utilization == 0.2  # 4.59 GiB of 24 GiB, rounded up to 0.01


def test_mindie_claim_includes_the_footprint_on_every_npu(paths: dict[str, str]) -> None:
    chosen = place(model_row(paths, "70b", "mindie", (), {}), "910Bx8")
    assert isinstance(chosen, Candidate)
    assert chosen.terms["runtime_overhead_gpu"] == 4 * 640 * 2**20  # 640 MiB per NPU, the worker's default


def test_gguf_manual_selection_splits_layers_over_the_selected_gpus(paths: dict[str, str]) -> None:
    spec = {"gpu_selector": ["a100:2", "a100:5"]}
    chosen = place(model_row(paths, "70b-q4", "llama-box", (), spec), "8xA100")
    assert isinstance(chosen, Candidate)
    assert len(chosen.tensor_split) == 2 and sum(chosen.tensor_split) == 81  # 80 blocks + the output layer


def test_parallel_sizes_must_match_a_manual_selection(paths: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"gpu_selector lists 2 GPUs but the backend parameters ask for tp 4"):
        model_row(paths, "70b", "vllm", ("--tensor-parallel-size", "4"), {"gpu_selector": ["a100:0", "a100:1"]})
    with pytest.raises(ValueError, match=r"tp 2 × pp 1 × dp 2 = 4 GPUs; select 4 GPUs"):
        model_row(paths, "70b", "sglang", ("--tp-size", "2", "--dp-size", "2"), {"gpu_selector": ["a100:0"]})


def test_refusals_list_workers_shortest_reason_first(paths: dict[str, str]) -> None:
    result = place(model_row(paths, "70b", "vllm", (), {}), "fleet")
    assert isinstance(result, Refusal)
    lines = result.lines()
    assert [line.split(":")[0] for line in lines] == ["a100-down", "mixed", "rtx4090", "aaa-4080"]
    assert [len(line) for line in lines] == sorted(len(line) for line in lines)  # not by name: aaa-4080 is last
    assert result.message == "No worker can take this instance. " + "; ".join(lines)
