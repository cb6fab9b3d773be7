"""MindIE parameters: every row of the seed's table translated into config.json/env, and refusals."""

import json
from typing import Any

import pytest

from gpustack.engines.mindie import MindIEParamError, base_config, parse, translate
from gpustack.engines.mindie_table import PARAMS

S = "ServerConfig"
D = "BackendConfig.ModelDeployConfig"
M = "BackendConfig.ModelDeployConfig.ModelConfig.0"
SC = "BackendConfig.ScheduleConfig"
B = "BackendConfig"


def _get(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for key in path.split("."):
        node = node[int(key)] if key.isdigit() else node[key]
    return node


def _plugins(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_get(config, M)["plugin_params"])


# (parameters, config path + key → value) for each row of the table; env rows and plugin rows further down.
CONFIG_ROWS: list[tuple[tuple[str, ...], str, Any]] = [
    (("--log-level", "Debug"), "LogConfig.logLevel", "Debug"),
    (("--max-link-num", "300"), f"{S}.maxLinkNum", 300),
    (("--token-timeout=120",), f"{S}.tokenTimeout", 120),
    (("--e2e-timeout 900",), f"{S}.e2eTimeout", 900),
    (("--kv-pool-config", '{"backend":"mooncake","configPath":"/etc/kv.json"}'), f"{B}.kvPoolConfig",
     {"backend": "mooncake", "configPath": "/etc/kv.json"}),
    (("--max-seq-len", "32768"), f"{D}.maxSeqLen", 32768),
    (("--max-input-token-len", "4096"), f"{D}.maxInputTokenLen", 4096),
    (("--truncation",), f"{D}.truncation", True),
    (("--cpu-mem-size", "5"), f"{M}.cpuMemSize", 5),
    (("--trust-remote-code",), f"{M}.trustRemoteCode", True),
    (("--models", '{"deepseekv2":{"ep_level":1}}'), f"{M}.models", {"deepseekv2": {"ep_level": 1}}),
    (("--async-scheduler-wait-time", "300"), f"{M}.asyncSchedulerWaitTime", 300),
    (("--cache-block-size", "64"), f"{SC}.cacheBlockSize", 64),
    (("--max-prefill-batch-size", "20"), f"{SC}.maxPrefillBatchSize", 20),
    (("--max-prefill-tokens", "4096"), f"{SC}.maxPrefillTokens", 4096),
    (("--prefill-time-ms-per-req", "300"), f"{SC}.prefillTimeMsPerReq", 300),
    (("--prefill-policy-type", "3"), f"{SC}.prefillPolicyType", 3),
    (("--max-batch-size", "64"), f"{SC}.maxBatchSize", 64),
    (("--max-iter-times", "1024"), f"{SC}.maxIterTimes", 1024),
    (("--decode-time-ms-per-req", "20"), f"{SC}.decodeTimeMsPerReq", 20),
    (("--decode-policy-type", "1"), f"{SC}.decodePolicyType", 1),
    (("--max-preempt-count", "4"), f"{SC}.maxPreemptCount", 4),
    (("--support-select-batch",), f"{SC}.supportSelectBatch", True),
    (("--no-support-select-batch",), f"{SC}.supportSelectBatch", False),
    (("--max-queue-delay-microseconds", "800"), f"{SC}.maxQueueDelayMicroseconds", 800),
    (("--max-first-token-wait-time", "0"), f"{SC}.maxFirstTokenWaitTime", 0),
    (("--enable-split",), f"{SC}.enableSplit", True),
    (("--no-enable-split",), f"{SC}.enableSplit", False),
    (("--policy-type", "4"), f"{SC}.policyType", 4),
    (("--split-chunk-tokens", "1024"), f"{SC}.splitChunkTokens", 1024),
    (("--split-start-batch-size", "8"), f"{SC}.splitStartBatchSize", 8),
    (("--enable-prefix-caching",), f"{SC}.enablePrefixCache", True),
    (("--pipeline-parallel-size", "2"), f"{M}.pp", 2),
    (("-pp", "2"), f"{M}.pp", 2),
    (("--data-parallel-size", "2"), f"{M}.dp", 2),
    (("-dp=-1",), f"{M}.dp", -1),
    (("--context-parallel-size", "4"), f"{M}.cp", 4),
    (("--tensor-parallel-size", "8"), f"{M}.tp", 8),
    (("-tp", "4"), f"{M}.tp", 4),
    (("--sequence-parallel-size", "2"), f"{M}.sp", 2),
    (("--moe-expert-parallel-size", "8"), f"{M}.moe_ep", 8),
    (("-moe-tp", "1"), f"{M}.moe_tp", 1),
    (("--enable-buffer-response",), f"{SC}.bufferResponseEnabled", True),
    (("--prefill-expected-time-ms", "1000"), f"{SC}.prefillExpectedTime", 1000),
    (("--decode-expected-time-ms", "50"), f"{SC}.decodeExpectedTime", 50),
]  # fmt: skip


def _translate(params: tuple[str, ...]) -> Any:
    config = base_config(model_name="qwen", weight_path="/models/qwen", host="127.0.0.1", port=40100, npus=2)
    return translate(parse(params), config)


@pytest.mark.parametrize(("params", "path", "value"), CONFIG_ROWS, ids=[" ".join(r[0]) for r in CONFIG_ROWS])
def test_config_rows(params: tuple[str, ...], path: str, value: Any) -> None:
    assert _get(_translate(params).config, path) == value


def test_every_table_row_is_covered() -> None:
    covered = {p.flag for p in PARAMS if any(p.flag in " ".join(r[0]) or set(p.aliases) & set(r[0])
                                             for r in CONFIG_ROWS)}  # fmt: skip
    others = {
        "--npu-memory-fraction", "--override-generation-config", "--enforce-eager", "--no-metrics", "--dtype",
        "--rope-scaling", "--rope-theta", "--enable-memory-decoding", "--memory-decoding-length",
        "--memory-decoding-dynamic-algo", "--enable-lookahead", "--lookahead-level", "--lookahead-window",
        "--lookahead-guess-set-size", "--enable-multi-token-prediction", "--multi-token-prediction-tokens",
    }  # fmt: skip
    assert {p.flag for p in PARAMS} == covered | others  # each has its own test below
    assert len(PARAMS) == 56


def test_base_config_and_derived_defaults() -> None:
    result = _translate(("--max-seq-len", "16384"))
    config = result.config
    assert _get(config, f"{S}.port") == _get(config, f"{S}.managementPort") == 40100
    assert _get(config, f"{S}.httpsEnabled") is False
    assert _get(config, f"{B}.npuDeviceIds") == [[0, 1]] and _get(config, f"{M}.worldSize") == 2
    assert _get(config, f"{M}.modelWeightPath") == "/models/qwen" and _get(config, f"{M}.modelName") == "qwen"
    # the table: max prefill tokens and max iter times default to --max-seq-len, input length to their min
    assert _get(config, f"{SC}.maxPrefillTokens") == _get(config, f"{SC}.maxIterTimes") == 16384
    assert _get(config, f"{D}.maxInputTokenLen") == 16384
    assert result.env == {"MIES_SERVICE_MONITOR_MODE": "1"} and result.model_files == {}
    assert "plugin_params" not in _get(config, M)


def test_env_rows() -> None:
    result = _translate(("--npu-memory-fraction", "0.8", "--log-level", "Warning", "--no-metrics", "--enforce-eager"))
    assert result.env == {
        "NPU_MEMORY_FRACTION": "0.8",
        "MINDIE_LOG_LEVEL": "warning",
        "MIES_SERVICE_MONITOR_MODE": "0",
        "MINDIE_ASYNC_SCHEDULING_ENABLE": "0",
        "TASK_QUEUE_ENABLE": "0",
        "ATB_OPERATION_EXECUTE_ASYNC": "0",
        "ASCEND_LAUNCH_BLOCKING": "1",
    }


def test_model_file_rows() -> None:
    result = _translate((
        "--dtype", "half", "--rope-theta", "1000000",
        "--rope-scaling", '{"type":"yarn","factor":4.0,"original_max_position_embeddings":32768}',
        "--override-generation-config", '{"temperature": 0.5}',
    ))  # fmt: skip
    assert result.model_files == {
        "config.json": {
            "torch_dtype": "float16",
            "rope_theta": 1000000.0,
            "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
        },
        "generation_config.json": {"temperature": 0.5},
    }
    assert _translate(("--dtype", "auto")).model_files == {}


def test_plugin_rows() -> None:
    result = _translate((
        "--enable-memory-decoding", "--memory-decoding-length", "8", "--memory-decoding-dynamic-algo",
    ))  # fmt: skip
    assert _plugins(result.config) == {"plugin_type": "memory_decoding", "decoding_length": 8, "dynamic_algo": True}
    result = _translate((
        "--enable-lookahead", "--lookahead-level", "5", "--lookahead-window", "6", "--lookahead-guess-set-size", "7",
    ))  # fmt: skip
    assert _plugins(result.config) == {"plugin_type": "la", "level": 5, "window": 6, "guess_set_size": 7}
    result = _translate(("--enable-multi-token-prediction", "--multi-token-prediction-tokens", "2"))
    assert _plugins(result.config) == {"plugin_type": "mtp", "num_speculative_tokens": 2}
    result = _translate(("--enable-prefix-caching", "--enable-split"))
    assert _plugins(result.config) == {"plugin_type": "splitfuse,prefix_cache"}
    # an option without its switch adds no plugin
    assert "plugin_params" not in _get(_translate(("--lookahead-level", "5")).config, M)


BAD = [
    (("--max-link-num", "0"), "--max-link-num=0 is out of range [1, 1000]"),
    (("--max-link-num", "1001"), "out of range [1, 1000]"),
    (("--token-timeout", "3601"), "--token-timeout=3601 is out of range [1, 3600]"),
    (("--npu-memory-fraction", "0"), "--npu-memory-fraction=0 is out of range (0, 1]"),
    (("--npu-memory-fraction", "1.5"), "out of range (0, 1]"),
    (("--max-seq-len", "0"), "--max-seq-len=0 is out of range (0, *)"),
    (("--max-batch-size", "abc"), "--max-batch-size takes an integer"),
    (("--split-chunk-tokens", "100"), "must be a multiple of 16"),
    (("--split-chunk-tokens", "8208"), "out of range [1, 8192]"),
    (("--lookahead-level", "2"), "out of range [3, 16]"),
    (("--log-level", "Loud"), "is not one of: Verbose, Info, Warning, Warn, Error, Debug"),
    (("--policy-type", "3"), "is not one of: 0, 4, 5, 6, 7"),
    (("--tensor-parallel-size", "3"), "must be -1 or a power of 2"),
    (("--cache-block-size", "100"), "must be -1 or a power of 2"),
    (("--models", "[1]"), "--models takes a JSON object"),
    (("--rope-scaling", "{bad"), "--rope-scaling takes a JSON object"),
    (("--max-batch-size", "10", "--max-prefill-batch-size", "20"), "--max-prefill-batch-size=20 must be at most "
                                                                   "--max-batch-size (10)"),
    (("--max-seq-len", "1024", "--max-prefill-tokens", "2048"), "must be at most --max-seq-len (1024)"),
    (("--gpu-memory-utilization", "0.9"), "does not take the parameter --gpu-memory-utilization"),
    (("--no-max-batch-size",), "does not take the parameter --no-max-batch-size"),
    (("--truncation=true",), "--truncation is a switch and takes no value"),
    (("--max-batch-size",), "--max-batch-size needs a value"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "message"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_values_name_the_flag_and_range(params: tuple[str, ...], message: str) -> None:
    with pytest.raises(MindIEParamError, match="MindIE") as info:
        parse(params)
    assert message in str(info.value)
