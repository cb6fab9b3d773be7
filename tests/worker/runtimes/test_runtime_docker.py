"""DockerRuntime: container options without an engine; live start/stop only where an engine answers."""

import asyncio
import os
import time
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.types import DeviceRequest

from gpustack.worker.backends.base import LaunchSpec
from gpustack.worker.runtimes.base import RuntimeStartError, get_runtime
from gpustack.worker.runtimes.docker import LABEL, DockerRuntime, container_name, container_options


def _spec(**kwargs: object) -> LaunchSpec:
    fields: dict = {"argv": ("vllm", "serve", "/models/m"), "env": {"A": "1"}, "port": 8000}
    fields.update({"image": "vllm/vllm-openai:latest", "name": "m-1"}, **kwargs)
    return LaunchSpec(**fields)


def test_options_replace_entrypoint_with_argv() -> None:
    options = container_options(_spec(gpu_indexes=(1, 3), mounts=("/models/m",)))
    assert options["image"] == "vllm/vllm-openai:latest"
    assert options["entrypoint"] == ["vllm"]
    assert options["command"] == ["serve", "/models/m"]
    assert options["network_mode"] == "host" and options["detach"] is True
    assert options["environment"] == {"A": "1"}
    assert options["labels"] == {LABEL: "m-1"} and options["name"] == "gpustack-m-1"
    (request,) = options["device_requests"]
    assert isinstance(request, DeviceRequest)
    assert request.device_ids == ["1", "3"] and request.capabilities == [["gpu"]]
    (mount,) = options["mounts"]
    assert mount["Source"] == mount["Target"] == "/models/m" and mount["ReadOnly"] is True


def test_options_keep_entrypoint_and_no_gpus() -> None:
    options = container_options(_spec(argv=("--flag",), keep_entrypoint=True, gpu_vendor="amd", gpu_indexes=(0,)))
    assert "entrypoint" not in options
    assert options["command"] == ["--flag"]
    assert "device_requests" not in options
    options = container_options(_spec(argv=(), keep_entrypoint=True))
    assert options["command"] is None


def test_cpu_placement_hides_every_gpu_in_the_container() -> None:
    env = container_options(_spec())["environment"]
    assert env["A"] == "1"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"  # CUDA images default to all GPUs
    assert env["CUDA_VISIBLE_DEVICES"] == env["HIP_VISIBLE_DEVICES"] == env["ASCEND_RT_VISIBLE_DEVICES"] == ""
    assert "device_requests" not in container_options(_spec())


def test_amd_and_ascend_gpus_come_in_as_devices() -> None:
    amd = container_options(_spec(gpu_vendor="amd", gpu_indexes=(1, 2)))
    assert amd["devices"] == ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"]
    assert amd["environment"]["HIP_VISIBLE_DEVICES"] == amd["environment"]["ROCR_VISIBLE_DEVICES"] == "1,2"
    assert "device_requests" not in amd
    npu = container_options(_spec(gpu_vendor="huawei", gpu_indexes=(4,), mounts=("/models/m",)))
    assert npu["devices"] == [
        "/dev/davinci4:/dev/davinci4:rwm", "/dev/davinci_manager:/dev/davinci_manager:rwm",
        "/dev/devmm_svm:/dev/devmm_svm:rwm", "/dev/hisi_hdc:/dev/hisi_hdc:rwm",
    ]  # fmt: skip
    sources = [m["Source"] for m in npu["mounts"]]
    assert sources == ["/models/m", "/usr/local/Ascend/driver", "/usr/local/dcmi", "/usr/local/bin/npu-smi"]
    assert all(m["ReadOnly"] for m in npu["mounts"])
    assert "devices" not in container_options(_spec(gpu_indexes=(0,)))  # NVIDIA: a device request


def test_options_require_an_image() -> None:
    with pytest.raises(RuntimeStartError):
        container_options(_spec(image=None))


def test_is_available_answers_fast() -> None:
    started = time.monotonic()
    DockerRuntime().is_available()
    assert time.monotonic() - started < 5


def test_get_runtime_docker_is_shared() -> None:
    assert get_runtime("docker") is get_runtime("docker")


# Images with `sh` that may already be on the engine: no registry is needed when one of them is there
# (.ci/docker-image imports gpustack-base:bookworm from a Debian rootfs).
_SHELL_IMAGES = ("busybox:latest", "gpustack-base:bookworm")


def _local_shell_image() -> str | None:
    if not DockerRuntime().is_available():
        return None
    client = docker.from_env(timeout=10)
    try:
        for name in _SHELL_IMAGES:
            try:
                client.images.get(name)
                return name
            except docker.errors.ImageNotFound:
                continue
        try:
            client.images.pull("busybox", tag="latest")
            return "busybox:latest"
        except docker.errors.DockerException:
            return None
    finally:
        client.close()


_IMAGE = _local_shell_image()
# CI (CI=true) never skips: .ci/run starts an engine and imports the base image, so a miss there fails.
live = pytest.mark.skipif(
    _IMAGE is None and os.environ.get("CI") != "true",
    reason=f"no Docker engine answers here, or it has none of {_SHELL_IMAGES} and no registry",
)


@live
async def test_container_exit_code_logs_and_stop(tmp_path: Path) -> None:
    runtime = DockerRuntime()
    spec = LaunchSpec(
        argv=("sh", "-c", "echo hello $GREETING; exit 3"),
        env={"GREETING": "docker"},
        port=0,
        image=_IMAGE,
        name=f"gpustack-test-{int(time.time())}",
    )
    log = tmp_path / "container.log"
    handle = await runtime.start(spec, log)
    try:
        assert (await runtime.list_handles())[handle] == spec.name
        for _ in range(200):
            if (code := await runtime.exit_code(handle)) is not None:
                break
            await asyncio.sleep(0.1)
        assert code == 3
        for _ in range(50):
            if "hello docker" in log.read_text():
                break
            await asyncio.sleep(0.1)
        assert "hello docker" in log.read_text()
    finally:
        await runtime.stop(handle, timeout=2)
    with pytest.raises(KeyError):
        await runtime.exit_code(handle)
    await runtime.stop(handle)  # idempotent


def test_container_names_are_sanitised() -> None:
    assert container_name("org/model:q4-abc123") == "gpustack-org-model-q4-abc123"
    assert container_name("") is None


def _containers_named(name: str) -> list[str]:
    client = docker.from_env(timeout=10)
    try:
        return [c.id for c in client.containers.list(all=True, filters={"name": name})]
    finally:
        client.close()


@live
async def test_container_that_cannot_start_is_removed(tmp_path: Path) -> None:
    """Regression: a start failure (no such executable) used to leave the container in state Created."""
    name = f"gpustack-nostart-{int(time.time() * 1000)}"
    spec = LaunchSpec(argv=("/no/such/engine", "--port", "1"), env={}, port=0, image=_IMAGE, name=name)
    with pytest.raises(RuntimeStartError, match="could not start") as info:
        await DockerRuntime().start(spec, tmp_path / "c.log")
    assert "/no/such/engine" in str(info.value)
    assert _containers_named(container_name(name) or name) == []


@live
async def test_missing_image_says_how_to_load_it(tmp_path: Path) -> None:
    image = "gpustack-test/no-such-image:never"
    spec = LaunchSpec(argv=("true",), env={}, port=0, image=image, name=f"gpustack-noimage-{int(time.time())}")
    with pytest.raises(RuntimeStartError) as info:
        await DockerRuntime().start(spec, tmp_path / "c.log")
    message = str(info.value)
    assert f"image {image} is not on this worker" in message
    assert f"docker save {image}" in message and "docker load -i image.tar" in message


@live
async def test_prepare_reports_a_pull_and_names_the_image_when_it_fails() -> None:
    seen: list[tuple[str, float | None]] = []

    async def progress(message: str, percent: float | None) -> None:
        seen.append((message, percent))

    runtime = DockerRuntime()
    assert _IMAGE is not None
    await runtime.prepare(LaunchSpec(argv=(), env={}, port=0, image=_IMAGE), progress)
    assert seen == []  # present: nothing to pull
    image = "gpustack-test/no-such-image:never"
    with pytest.raises(RuntimeStartError, match="docker load -i image.tar"):
        await runtime.prepare(LaunchSpec(argv=(), env={}, port=0, image=image), progress)
    assert seen == [(f"pulling image {image}", 0.0)]
