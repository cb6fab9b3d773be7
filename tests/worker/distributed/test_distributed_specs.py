"""Golden launch specs of every node of a distributed instance: argv, env, health and readiness per node."""

import json
import sys
import tempfile
from pathlib import Path

import pytest

from gpustack.schemas.instances import ModelInstancePublic
from gpustack.worker.backends.base import LaunchContext
from gpustack.worker.distributed import Node, Topology, topology_of
from gpustack.worker.distributed.mindie import mindie_node_part, mindie_node_spec, rank_table
from gpustack.worker.distributed.ray import RayLimits, RayPorts, ray_head_part, ray_worker_part, vllm_ray_spec
from gpustack.worker.distributed.rpc import llama_box_main_spec, rpc_server_parts
from gpustack.worker.distributed.sglang import sglang_main_spec, sglang_rank_part

WORK = Path("/data/work/llama-1")
CTX = LaunchContext(
    instance_id=1,
    instance_name="llama-1",
    model_name="llama",
    model_path="/models/llama-70b",
    host="127.0.0.1",
    port=40100,
    gpu_indexes=(0, 1),
    vram_utilization=0.9,
    context_size=8192,
    work_dir=WORK,
)
HEAD_PORTS = RayPorts(gcs=40101, node=(40102, 40103, 40104, 40105, 40106, 40107), workers=(40108, 40109))
SUB_PORTS = RayPorts(node=(40200, 40201, 40202, 40203, 40204, 40205), workers=(40206, 40207))
TOPO = Topology(
    (
        Node(1, "10.0.0.1", (0, 1), HEAD_PORTS.as_list()),
        Node(2, "10.0.0.2", (2, 3), SUB_PORTS.as_list()),
    )
)
RAY = [sys.executable, "-m", "ray.scripts.scripts", "start"]


def _ray_node(ip: str, ports: list[str], workers: str, temp: str) -> list[str]:
    nm, om, rt, ag, ah, me = ports
    return [
        "--node-ip-address", ip, "--num-gpus", "2",
        "--node-manager-port", nm, "--object-manager-port", om, "--runtime-env-agent-port", rt,
        "--dashboard-agent-grpc-port", ag, "--dashboard-agent-listen-port", ah, "--metrics-export-port", me,
        "--worker-port-list", workers, "--temp-dir", temp, "--disable-usage-stats", "--block",
    ]  # fmt: skip


def test_ray_head_on_the_main_worker() -> None:
    part = ray_head_part(CTX, TOPO, HEAD_PORTS)
    assert list(part.spec.argv) == [
        *RAY, "--head", "--port", "40101", "--include-dashboard=false",
        *_ray_node("10.0.0.1", ["40102", "40103", "40104", "40105", "40106", "40107"], "40108,40109",
                  f"{tempfile.gettempdir()}/gpustack-ray/i1-head"),
    ]  # fmt: skip
    assert part.spec.env == {"RAY_USAGE_STATS_ENABLED": "0"}
    assert (part.ready_port, part.ready_host, part.role, part.spec.name, part.spec.gpu_indexes) == (
        40101, "10.0.0.1", "ray-head", "llama-1-ray-head", (0, 1),
    )  # fmt: skip
    assert part.spec.health_path == ""


def test_ray_worker_joins_the_head_and_blocks() -> None:
    sub_ctx = LaunchContext(**{**vars(CTX), "gpu_indexes": (2, 3), "port": 0})
    part = ray_worker_part(sub_ctx, TOPO, 1, SUB_PORTS, RayLimits(num_cpus=1, object_store_bytes=80_000_000))
    node = _ray_node(
        "10.0.0.2",
        ["40200", "40201", "40202", "40203", "40204", "40205"],
        "40206,40207",
        f"{tempfile.gettempdir()}/gpustack-ray/i1-node1",
    )
    assert list(part.spec.argv) == [
        *RAY,
        "--address=10.0.0.1:40101",
        *node[:-2],
        "--num-cpus",
        "1",
        "--object-store-memory",
        "80000000",
        *node[-2:],
    ]
    assert (part.ready_port, part.ready_host, part.role, part.spec.gpu_indexes) == (
        40200,
        "10.0.0.2",
        "ray-worker",
        (2, 3),
    )


def test_vllm_on_the_main_worker_uses_ray_with_tp_per_worker_and_pp_per_worker_count() -> None:
    spec = vllm_ray_spec(CTX, TOPO)
    assert list(spec.argv) == [
        "vllm", "serve", "/models/llama-70b", "--host", "127.0.0.1", "--port", "40100",
        "--served-model-name", "llama", "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.9",
        "--max-model-len", "8192", "--pipeline-parallel-size", "2", "--distributed-executor-backend", "ray",
    ]  # fmt: skip
    assert spec.env == {"RAY_ADDRESS": "10.0.0.1:40101", "VLLM_HOST_IP": "10.0.0.1"}
    assert (spec.health_path, spec.port) == ("/health", 40100)
    user = LaunchContext(**{**vars(CTX), "backend_parameters": ("--pipeline-parallel-size=4", "-tp 1")})
    argv = list(vllm_ray_spec(user, TOPO).argv)
    assert "--pipeline-parallel-size=4" in argv and "-tp" in argv and "--tensor-parallel-size" not in argv
    assert argv.count("--distributed-executor-backend") == 1


def test_ray_ports_round_trip_and_refuse_short_lists() -> None:
    assert RayPorts.from_list(HEAD_PORTS.as_list(), head=True) == HEAD_PORTS
    assert RayPorts.from_list(list(SUB_PORTS.as_list()), head=False) == SUB_PORTS
    assert RayPorts.count(head=True) == 11 and RayPorts.count(head=False) == 10
    with pytest.raises(ValueError, match="a Ray head needs at least 8 ports, got 3"):
        RayPorts.from_list((1, 2, 3), head=True)
    with pytest.raises(ValueError, match="needs a GCS port"):
        ray_head_part(CTX, TOPO, SUB_PORTS)


SGL_TOPO = Topology((Node(1, "10.0.0.1", (0, 1), (40150,)), Node(2, "10.0.0.2", (0, 1))))
SGL = [
    sys.executable, "-m", "sglang.launch_server", "--model-path", "/models/llama-70b", "--host", "127.0.0.1",
    "--port", "40100", "--served-model-name", "llama", "--enable-metrics", "--tp-size", "2",
    "--mem-fraction-static", "0.9", "--context-length", "8192", "--pp-size", "2",
]  # fmt: skip


def test_sglang_rank_zero_serves_and_rank_one_joins() -> None:
    main = sglang_main_spec(CTX, SGL_TOPO)
    assert list(main.argv) == [*SGL, "--nnodes", "2", "--node-rank", "0", "--dist-init-addr", "10.0.0.1:40150"]
    assert (main.health_path, main.port) == ("/health", 40100)
    rank = sglang_rank_part(CTX, SGL_TOPO, 1)
    assert list(rank.spec.argv) == [*SGL, "--nnodes", "2", "--node-rank", "1", "--dist-init-addr", "10.0.0.1:40150"]
    assert (rank.spec.health_path, rank.ready_port, rank.spec.name) == ("", None, "llama-1-rank-1")
    user = LaunchContext(**{**vars(CTX), "backend_parameters": ("--node-rank 5", "--tp-size 1")})
    argv = list(sglang_main_spec(user, SGL_TOPO).argv)
    assert argv[argv.index("--node-rank") + 1] == "0" and argv[argv.index("--tp-size") + 1] == "1"
    with pytest.raises(ValueError, match="--dist-init-addr port"):
        sglang_main_spec(CTX, Topology((Node(1, "10.0.0.1", (0, 1)), Node(2, "10.0.0.2", (0, 1)))))


RPC_TOPO = Topology((Node(1, "10.0.0.1", (0,)), Node(2, "10.0.0.2", (0, 1), (40300, 40301))))


def test_llama_box_rpc_servers_one_per_gpu() -> None:
    sub_ctx = LaunchContext(**{**vars(CTX), "gpu_indexes": (0, 1), "port": 0})
    parts = rpc_server_parts(sub_ctx, (40300, 40301))
    assert [list(p.spec.argv) for p in parts] == [
        ["llama-box", "--rpc-server-host", "0.0.0.0", "--rpc-server-port", str(port), "--rpc-server-main-gpu", "0"]
        for port in (40300, 40301)
    ]
    assert [(p.spec.gpu_indexes, p.ready_port, p.spec.name) for p in parts] == [
        ((0,), 40300, "llama-1-rpc-0"), ((1,), 40301, "llama-1-rpc-1"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="one RPC server port per GPU"):
        rpc_server_parts(sub_ctx, (40300,))


def test_llama_box_main_offloads_to_the_rpc_servers_with_the_recorded_split() -> None:
    main_ctx = LaunchContext(
        **{**vars(CTX), "gpu_indexes": (0,), "model_path": "/m.gguf", "tensor_split": (3, 3, 3), "offload_layers": 9,
           "total_layers": 9, "context_size": 4096}
    )  # fmt: skip
    spec = llama_box_main_spec(main_ctx, RPC_TOPO)
    assert list(spec.argv) == [
        "llama-box", "--host", "127.0.0.1", "--port", "40100", "-m", "/m.gguf", "--alias", "llama",
        "-ngl", "999", "--ctx-size", "4096", "--embeddings", "--tensor-split", "3,3,3",
        "--rpc", "10.0.0.2:40300,10.0.0.2:40301",
    ]  # fmt: skip
    assert (spec.health_path, spec.gpu_indexes) == ("/v1/models", (0,))
    waiting = Topology((RPC_TOPO.main, Node(2, "10.0.0.2", (0, 1))))
    with pytest.raises(ValueError, match="has not reported its RPC server ports yet"):
        llama_box_main_spec(main_ctx, waiting)


MINDIE_TOPO = Topology(
    (
        Node(1, "10.0.0.1", (0, 1), gpu_addresses=("192.168.1.10", "192.168.1.11")),
        Node(2, "10.0.0.2", (0, 1), gpu_addresses=("192.168.1.20", "192.168.1.21")),
    )
)


def test_mindie_nodes_share_a_rank_table(tmp_path: Path) -> None:
    ctx = LaunchContext(**{**vars(CTX), "model_path": str(tmp_path), "work_dir": tmp_path / "work"})
    table = rank_table(MINDIE_TOPO)
    assert table == {
        "version": "1.0",
        "server_count": "2",
        "server_list": [
            {"server_id": "10.0.0.1", "container_ip": "10.0.0.1", "device": [
                {"device_id": "0", "device_ip": "192.168.1.10", "rank_id": "0"},
                {"device_id": "1", "device_ip": "192.168.1.11", "rank_id": "1"}]},
            {"server_id": "10.0.0.2", "container_ip": "10.0.0.2", "device": [
                {"device_id": "0", "device_ip": "192.168.1.20", "rank_id": "2"},
                {"device_id": "1", "device_ip": "192.168.1.21", "rank_id": "3"}]},
        ],
        "status": "completed",
    }  # fmt: skip
    main = mindie_node_spec(ctx, MINDIE_TOPO, 0)
    files = dict(main.files)
    config = json.loads(files[str(tmp_path / "work" / "mindie-config.json")])
    assert config["BackendConfig"]["multiNodesInferEnabled"] is True
    assert config["BackendConfig"]["ModelDeployConfig"]["ModelConfig"][0]["worldSize"] == 2
    assert json.loads(files[str(tmp_path / "work" / "ranktable.json")]) == table
    assert main.env["RANK_TABLE_FILE"] == str(tmp_path / "work" / "ranktable.json")
    assert (main.env["MIES_CONTAINER_IP"], main.health_path, main.argv) == (
        "10.0.0.1",
        "/info",
        ("mindieservice_daemon",),
    )
    sub = mindie_node_part(ctx, MINDIE_TOPO, 1)
    assert (sub.spec.env["MIES_CONTAINER_IP"], sub.spec.health_path, sub.spec.name) == (
        "10.0.0.2",
        "",
        "llama-1-node-1",
    )
    no_ips = Topology((Node(1, "10.0.0.1", (0,)), Node(2, "10.0.0.2", (0,))))
    with pytest.raises(ValueError, match="has not reported the device IPs"):
        rank_table(no_ips)


def test_topology_from_the_instance_record() -> None:
    instance = ModelInstancePublic.model_validate(
        {
            "id": 5, "name": "m-1", "model_id": 1, "worker_id": 1, "worker_ip": "10.0.0.1", "gpu_indexes": [0, 1],
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "distributed_servers": {"subordinate_workers": [
                {"worker_id": 2, "worker_ip": "10.0.0.2", "gpu_indexes": [2, 3], "ports": [40200, 40201]},
            ]},
        }
    )  # fmt: skip
    topo = topology_of(instance, main_ports=(40101,))
    assert topo.nodes == (Node(1, "10.0.0.1", (0, 1), (40101,)), Node(2, "10.0.0.2", (2, 3), (40200, 40201)))
    assert (topo.rank_of(2), topo.gpus_per_node) == (1, 2)
    with pytest.raises(ValueError, match="worker 9 takes no part"):
        topo.rank_of(9)
