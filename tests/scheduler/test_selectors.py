"""Selectors: single GPU, multi-GPU layer split, partial offload, CPU, generic, refusal texts."""

from gpustack.scheduler.selectors import select_candidates, selector_for
from gpustack.scheduler.selectors.common import distribute
from gpustack.scheduler.selectors.fraction import select_fraction
from gpustack.scheduler.selectors.generic import select_generic
from gpustack.scheduler.selectors.gguf import select_gguf
from gpustack.scheduler.selectors.voxbox import select_voxbox

from ._snapshots import estimate, gib, gpu, model, worker

# estimate(): 8 blocks of 1 GiB (weights + KV), 0.5 GiB input embedding (host), 0.5 GiB output layer,
# 0.5 GiB compute: 9 GiB on one GPU (9 llama.cpp layers), 9.5 GiB on the CPU.


def test_registry_picks_selector_by_backend() -> None:
    assert selector_for("llama-box") is select_gguf
    assert selector_for("custom") is select_gguf
    assert selector_for("vox-box") is select_voxbox
    assert selector_for("mindie") is select_fraction
    assert selector_for("something-new") is select_generic


def test_single_gpu_candidates_for_each_fitting_gpu() -> None:
    w = worker(1, "a", [gpu(0, 24), gpu(1, 8), gpu(2, 12)])
    candidates, reasons = select_candidates(model(), estimate(), [w])
    assert reasons == {}
    assert [c.gpu_indexes for c in candidates] == [(0,), (2,)]
    assert candidates[0].vram == {0: gib(9)}
    assert candidates[0].ram == gib(0.5)  # the input embedding stays in host memory
    assert (candidates[0].offload_layers, candidates[0].total_layers) == (9, 9)  # blocks + output layer
    assert candidates[0].tensor_split == ()


def test_free_vram_uses_the_larger_of_claimed_and_used() -> None:
    busy_device = worker(1, "used", [gpu(0, 24, used=16)])  # foreign process holds 16 GiB
    busy_claims = worker(2, "claimed", [gpu(0, 24, claimed=16)])  # our instance, not loaded yet
    for w in (busy_device, busy_claims):
        candidates, reasons = select_candidates(model(cpu_offloading=False), estimate(), [w])
        assert candidates == []
        assert "largest free GPU has 8.0 GiB (GPU 0 RTX 4090)" in reasons[w.name]


def test_multi_gpu_layer_split_is_proportional_and_exact() -> None:
    w = worker(1, "a", [gpu(0, 6), gpu(1, 6), gpu(2, 2)])
    candidates, _ = select_candidates(model(), estimate(), [w])
    assert len(candidates) == 1
    split = candidates[0]
    assert split.gpu_indexes == (0, 1)  # the two largest GPUs suffice; GPU 2 is not used
    # 4 blocks each; the last GPU also holds the output layer; each GPU has its compute buffer
    assert split.vram == {0: gib(4 + 0.5), 1: gib(4 + 0.5 + 0.5)}
    assert sum(split.vram.values()) == estimate().full_gpu_bytes + gib(0.5)
    assert split.ram == gib(0.5) and split.offload_layers == 9
    assert split.tensor_split == (4, 5)  # llama.cpp layers per GPU: the output layer counts on GPU 1


def test_multi_gpu_split_follows_free_memory() -> None:
    w = worker(1, "a", [gpu(0, 3.5), gpu(1, 8)])
    split = select_candidates(model(), estimate(), [w])[0][0]
    # GPU 1 (most free, and last) takes 6 blocks + the output layer + compute; GPU 0 2 blocks + compute
    assert split.vram == {0: gib(2 + 0.5), 1: gib(6 + 0.5 + 0.5)}
    assert split.tensor_split == (2, 7)


def test_partial_offload_puts_remaining_layers_in_ram() -> None:
    w = worker(1, "a", [gpu(0, 4)], ram=32)
    candidates, reasons = select_candidates(model(), estimate(), [w])
    assert reasons == {}
    (c,) = candidates
    assert (c.offload_layers, c.total_layers) == (3, 9)  # 4 GiB - 0.5 compute = 3 whole blocks
    assert c.vram == {0: gib(3 + 0.5)}
    assert c.ram == gib(5 + 1 + 0.5)  # 5 blocks + input embedding + output layer + CPU compute buffer


def test_partial_offload_refused_when_ram_is_short() -> None:
    w = worker(1, "a", [gpu(0, 4)], ram=8, ram_claimed=4)
    candidates, reasons = select_candidates(model(), estimate(), [w])
    assert candidates == []
    assert reasons["a"] == (
        "needs 9.0 GiB VRAM, largest free GPU has 4.0 GiB (GPU 0 RTX 4090); "
        "partial offload of 3/9 layers needs 6.5 GiB RAM, only 4.0 GiB free"
    )


def test_no_offload_when_cpu_offloading_disabled() -> None:
    w = worker(1, "a", [gpu(0, 4), gpu(1, 3)], ram=256)
    candidates, reasons = select_candidates(model(cpu_offloading=False), estimate(), [w])
    assert candidates == []
    assert reasons["a"] == (
        "needs 9.0 GiB VRAM, largest free GPU has 4.0 GiB (GPU 0 RTX 4090); "
        "splitting across its 2 GPUs (7.0 GiB free) does not fit; CPU offloading is disabled"
    )


def test_cpu_only_worker_runs_in_ram() -> None:
    (c,), reasons = select_candidates(model(), estimate(), [worker(1, "cpu", ram=16)])
    assert reasons == {}
    assert (c.gpu_indexes, c.vram, c.ram, c.offload_layers) == ((), {}, gib(9.5), 0)


def test_cpu_only_worker_with_too_little_ram() -> None:
    candidates, reasons = select_candidates(model(), estimate(), [worker(1, "cpu", ram=4)])
    assert candidates == []
    assert reasons == {"cpu": "no GPUs and the model needs 9.5 GiB RAM, only 4.0 GiB free"}


def test_tiny_gpus_fall_back_to_full_cpu_with_offloading() -> None:
    w = worker(1, "a", [gpu(0, 1)], ram=16)  # 1 GiB - 0.5 compute < one 1 GiB layer
    (c,), _ = select_candidates(model(), estimate(), [w])
    assert (c.gpu_indexes, c.ram, c.offload_layers) == ((), gib(9.5), 0)
    w_small_ram = worker(2, "b", [gpu(0, 1)], ram=2)
    candidates, reasons = select_candidates(model(), estimate(), [w_small_ram])
    assert candidates == []
    assert reasons["b"].endswith("no layer fits on a GPU and running on CPU needs 9.5 GiB RAM, only 2.0 GiB free")


def test_small_numbers_are_shown_in_mib() -> None:
    small = estimate(weights=0.5, non_layer=0.1, kv=0.1, compute=0.05, layers=4)
    candidates, reasons = select_candidates(model(cpu_offloading=False), small, [worker(1, "a", [gpu(0, 0.25)])])
    assert candidates == []
    assert reasons["a"].startswith("needs 614.4 MiB VRAM, largest free GPU has 256.0 MiB (GPU 0 RTX 4090)")


def test_distributed_flag_adds_star_reason_only_when_nothing_fits() -> None:
    small = [worker(1, "a", [gpu(0, 4)], ram=1)]
    _, reasons = select_candidates(model(distributed_inference_across_workers=True), estimate(), small)
    assert reasons["*"] == "across workers: 1 usable worker(s) with GPUs, distributed llama-box needs two"
    _, reasons = select_candidates(model(distributed_inference_across_workers=False), estimate(), small)
    assert "*" not in reasons
    big = [worker(1, "a", [gpu(0, 24)])]
    candidates, reasons = select_candidates(model(distributed_inference_across_workers=True), estimate(), big)
    assert len(candidates) == 1 and reasons == {}


def test_generic_selector_even_split_and_no_cpu_offload() -> None:
    vllm = model(backend="something-new")  # an engine without a placement model of its own
    split_worker = worker(1, "a", [gpu(0, 6), gpu(1, 6)])
    (c,), _ = select_candidates(vllm, estimate(), [split_worker])
    assert c.gpu_indexes == (0, 1)
    assert c.vram == {0: gib(4.25 + 0.5), 1: gib(4.25 + 0.5)}  # (8 - 0.5 host + 1) / 2 each + compute
    small = worker(2, "b", [gpu(0, 4)], ram=512)
    candidates, reasons = select_candidates(vllm, estimate(), [small])
    assert candidates == []
    assert reasons["b"] == "needs 9.0 GiB VRAM, largest free GPU has 4.0 GiB (GPU 0 RTX 4090)"
    (cpu,), _ = select_candidates(vllm, estimate(), [worker(3, "cpu", ram=16)])
    assert cpu.ram == gib(9.5) and cpu.gpu_indexes == ()


def test_distribute_respects_caps_and_total() -> None:
    assert distribute(8, [4, 5], [6, 6]) == [4, 4]
    assert distribute(10, [2, 100, 3], [1, 1, 1]) == [2, 5, 3]
    assert sum(distribute(7, [7, 7, 7], [1, 2, 4])) == 7


def test_runtime_overhead_is_claimed_on_every_gpu_an_engine_uses() -> None:
    (one,), _ = select_candidates(model(), estimate(), [worker(1, "a", [gpu(0, 24)], overhead=0.625)])
    assert one.vram == {0: gib(9 + 0.625)}
    assert one.terms["runtime_overhead_gpu"] == gib(0.625)
    (split,), _ = select_candidates(model(), estimate(), [worker(2, "b", [gpu(0, 6), gpu(1, 6)], overhead=0.5)])
    assert split.vram == {0: gib(4 + 0.5 + 0.5), 1: gib(4 + 0.5 + 0.5 + 0.5)}
    assert split.terms["runtime_overhead_gpu"] == gib(1)
    (generic,), _ = select_candidates(
        model(backend="something-new"), estimate(), [worker(3, "c", [gpu(0, 24)], overhead=1)]
    )
    assert generic.vram == {0: gib(10)}


def test_overhead_can_turn_a_fit_into_a_refusal() -> None:
    tight = worker(1, "a", [gpu(0, 9.5)], overhead=0.625)
    candidates, reasons = select_candidates(model(cpu_offloading=False), estimate(), [tight])
    assert candidates == []
    assert reasons["a"].startswith("needs 9.6 GiB VRAM, largest free GPU has 9.5 GiB")


def test_reserved_memory_is_never_free() -> None:
    w = worker(1, "a", [gpu(0, 9.5, reserved=0.75)])
    candidates, reasons = select_candidates(model(cpu_offloading=False), estimate(), [w])
    assert candidates == []
    assert "largest free GPU has 8.8 GiB" in reasons["a"]


def test_claim_terms_add_up_to_the_claim() -> None:
    layouts = [
        worker(1, "one", [gpu(0, 24)], overhead=0.5),
        worker(2, "split", [gpu(0, 6), gpu(1, 6)], overhead=0.25),
        worker(3, "partial", [gpu(0, 4)], overhead=0.5, ram=64),
        worker(4, "cpu", ram=64),
    ]
    for w in layouts:
        (c,), _ = select_candidates(model(), estimate(), [w])
        gpu_terms = sum(v for k, v in c.terms.items() if k.endswith("_gpu"))
        host_terms = sum(v for k, v in c.terms.items() if k.endswith("_host"))
        assert (gpu_terms, host_terms) == (sum(c.vram.values()), c.ram), w.name


def test_partial_offload_reserves_the_staging_compute_buffer() -> None:
    # while the output layer is on the host, the GPU's compute buffer is the (larger) staging one
    est = estimate(offload_compute=1.5)
    (c,), _ = select_candidates(model(), est, [worker(1, "a", [gpu(0, 4)], overhead=0.5)])
    assert (c.offload_layers, c.vram) == (2, {0: gib(0.5 + 1.5 + 2)})
    assert c.terms["compute_gpu"] == gib(1.5) and c.terms["compute_host"] == gib(0.5)


def test_cpu_only_engine_places_on_the_cpu_and_says_why() -> None:
    w = worker(1, "a", [gpu(0, 24)], ram=16, cpu_only=frozenset({"llama-box"}))
    (c,), reasons = select_candidates(model(), estimate(), [w])
    assert (c.gpu_indexes, c.vram, c.ram) == ((), {}, gib(9.5))
    assert c.note.startswith("placed on the CPU: the llama-box engine on a cannot use its GPUs")
    short = worker(2, "b", [gpu(0, 24)], ram=4, cpu_only=frozenset({"llama-box"}))
    candidates, reasons = select_candidates(model(), estimate(), [short])
    assert candidates == []
    assert reasons["b"].startswith("the llama-box engine on b cannot use its GPUs (a CPU-only build)")
    assert reasons["b"].endswith("running on its CPU needs 9.5 GiB RAM, only 4.0 GiB free")
    # another backend's engine is not affected
    (other,), _ = select_candidates(model(backend="custom"), estimate(), [w])
    assert other.gpu_indexes == (0,)
