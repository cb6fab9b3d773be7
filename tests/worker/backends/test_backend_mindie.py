"""MindIE backend: the daemon, its config.json file, env, health /info, overlays and Ascend visibility."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gpustack.worker.backends.base import LaunchContext, get_backend
from gpustack.worker.backends.mindie import CONFIG_ENV, IMAGE_DAEMON
from gpustack.worker.runtimes.base import write_launch_files
from gpustack.worker.runtimes.devices import process_device_env


def _ctx(tmp_path: Path, **changes: object) -> LaunchContext:
    model = tmp_path / "qwen"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16", "max_position_embeddings": 32768}))
    (model / "model.safetensors").write_text("weights")
    ctx = LaunchContext(
        instance_id=5, instance_name="qwen-1", model_name="qwen", model_path=str(model), host="127.0.0.1",
        port=40200, gpu_indexes=(4, 5), gpu_vendor="ascend", work_dir=tmp_path / "work",
    )  # fmt: skip
    return replace(ctx, **changes)


def test_daemon_config_env_and_health(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, backend_parameters=("--max-batch-size 64", "--npu-memory-fraction=0.8"), context_size=16384)
    spec = get_backend("mindie")(ctx)
    config_path = str(tmp_path / "work" / "mindie-config.json")
    assert spec.argv == ("mindieservice_daemon",) and spec.health_path == "/info"
    assert spec.env == {"MIES_SERVICE_MONITOR_MODE": "1", "NPU_MEMORY_FRACTION": "0.8", CONFIG_ENV: config_path}
    ((path, text),) = spec.files
    config = json.loads(text)
    backend = config["BackendConfig"]
    assert path == config_path
    assert config["ServerConfig"]["port"] == 40200 and config["ServerConfig"]["ipAddress"] == "127.0.0.1"
    assert backend["ScheduleConfig"]["maxBatchSize"] == 64
    assert backend["ModelDeployConfig"]["maxSeqLen"] == 16384  # the claim's context
    assert backend["npuDeviceIds"] == [[0, 1]]  # renumbered: the placed NPUs are the only ones visible
    assert backend["ModelDeployConfig"]["ModelConfig"][0]["modelWeightPath"] == ctx.model_path
    assert spec.links == () and spec.mounts == ()
    write_launch_files(spec)
    assert json.loads(Path(config_path).read_text()) == config


def test_claim_memory_fraction_unless_user_set(tmp_path: Path) -> None:
    assert get_backend("mindie")(_ctx(tmp_path, vram_utilization=0.85)).env["NPU_MEMORY_FRACTION"] == "0.85"
    user = _ctx(tmp_path, vram_utilization=0.85, backend_parameters=("--npu-memory-fraction", "0.5"))
    assert get_backend("mindie")(user).env["NPU_MEMORY_FRACTION"] == "0.5"


def test_model_file_overrides_use_an_overlay(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, backend_parameters=("--dtype", "float16"), image_name="ascendhub/mindie:2.1")
    spec = get_backend("mindie")(ctx)
    overlay = tmp_path / "work" / "model"
    assert spec.argv == (IMAGE_DAEMON,)
    assert spec.mounts == (ctx.model_path, str(tmp_path / "work"))
    write_launch_files(spec)
    assert json.loads((overlay / "config.json").read_text())["torch_dtype"] == "float16"
    assert (overlay / "model.safetensors").read_text() == "weights" and (overlay / "model.safetensors").is_symlink()
    assert json.loads((Path(ctx.model_path) / "config.json").read_text())["torch_dtype"] == "bfloat16"  # untouched
    config = json.loads(dict(spec.files)[str(tmp_path / "work" / "mindie-config.json")])
    assert config["BackendConfig"]["ModelDeployConfig"]["ModelConfig"][0]["modelWeightPath"] == str(overlay)


def test_bad_parameter_fails_the_launch_with_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--max-link-num=0 is out of range"):
        get_backend("mindie")(_ctx(tmp_path, backend_parameters=("--max-link-num", "0")))


def test_ascend_visibility_for_processes(tmp_path: Path) -> None:
    env = process_device_env(get_backend("mindie")(_ctx(tmp_path)))
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == "4,5" and env["CUDA_VISIBLE_DEVICES"] == ""


def test_huawei_vendor_is_ascend(tmp_path: Path) -> None:
    env = process_device_env(get_backend("mindie")(_ctx(tmp_path, gpu_vendor="huawei")))
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == "4,5" and env["CUDA_VISIBLE_DEVICES"] == env["HIP_VISIBLE_DEVICES"] == ""
