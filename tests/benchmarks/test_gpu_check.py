"""benchmarks/gpu_check.py without a GPU: its parsing, its verdict and its refusal to run on a CPU machine."""

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


def test_nvidia_smi_tables_are_parsed() -> None:
    gpus = gpu_check.parse_smi_gpus("0, NVIDIA H100 80GB HBM3, 81559, 2711\n1, NVIDIA H100 80GB HBM3, 81559, 0\n")
    assert [(g.index, g.name, g.total_mib, g.used_mib) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", 81559, 2711),
        (1, "NVIDIA H100 80GB HBM3", 81559, 0),
    ]
    assert gpu_check.parse_smi_apps("4242, 2710\n4343, [N/A]\n") == {4242: 2710}


def test_offload_line_is_read_from_the_engine_log() -> None:
    log = "load_tensors: offloading 22 repeating layers to GPU\nload_tensors: offloaded 22/23 layers to GPU\n"
    assert gpu_check.parse_offload(log) == (22, 23)
    assert gpu_check.parse_offload("nothing here") is None


def test_verdict_fails_an_under_claim_and_a_partial_offload() -> None:
    assert gpu_check.verdict(2807, 2792, (23, 23)) == []
    assert gpu_check.verdict(2222, 2792, (23, 23)) == ["claim 2222 MiB is below the measured 2792 MiB"]
    assert gpu_check.verdict(2807, 2792, (22, 23)) == ["only 22/23 layers were offloaded"]
    assert gpu_check.verdict(2807, 2792, None) == ["the engine log shows no offload line"]


def test_arguments_are_checked() -> None:
    args = gpu_check.parse_args([])
    assert (args.hidden, args.layers, args.heads, args.kv_heads, args.ffn) == (2048, 22, 32, 4, 5632)
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--heads", "3"])
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--requests", "0"])


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine runs the real check instead")
def test_without_a_gpu_it_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main([]) == 2
    assert "no NVIDIA GPU" in capsys.readouterr().err
