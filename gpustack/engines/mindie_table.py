"""MindIE's GPUStack parameter table as data: each flag's type, range or choices, and where it goes."""

from dataclasses import dataclass

# Where a value lands in MindIE's config.json (sections as MindIE nests them).
SERVER = ("ServerConfig",)
BACKEND = ("BackendConfig",)
DEPLOY = ("BackendConfig", "ModelDeployConfig")
MODEL = ("BackendConfig", "ModelDeployConfig", "ModelConfig", 0)
SCHEDULE = ("BackendConfig", "ScheduleConfig")
LOG = ("LogConfig",)

INF = float("inf")


@dataclass(frozen=True)
class Param:
    """One row: `kind` is int, float, bool (a switch, `--no-` form allowed), choice, json or str.

    `lo`/`hi` bound numbers (`open_lo`/`open_hi` exclude the bound); `hi_flag` names another flag whose
    value bounds this one from above; `target` is a config path + key, `env` an environment variable,
    `plugin` a speculative/caching plugin option, `model_file` a key merged into the model's own files.
    """

    flag: str
    kind: str
    aliases: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False
    hi_flag: str | None = None
    choices: tuple[str, ...] = ()
    power_of_two: bool = False  # -1 (off) or a power of two
    multiple_of: int | None = None
    target: tuple[tuple[str | int, ...], str] | None = None
    env: str | None = None
    plugin: tuple[str, str] | None = None  # (plugin_type, option key; "" for the switch itself)
    model_file: tuple[str, str] | None = None  # (file name in the model directory, key)


def _row(flag: str, kind: str, where: tuple[str | int, ...], key: str, **kw: object) -> Param:
    return Param(flag, kind, target=(where, key), **kw)  # type: ignore[arg-type]


PARAMS: tuple[Param, ...] = (
    _row("--log-level", "choice", LOG, "logLevel", choices=("Verbose", "Info", "Warning", "Warn", "Error", "Debug")),
    _row("--max-link-num", "int", SERVER, "maxLinkNum", lo=1, hi=1000),
    _row("--token-timeout", "int", SERVER, "tokenTimeout", lo=1, hi=3600),
    _row("--e2e-timeout", "int", SERVER, "e2eTimeout", lo=1, hi=3600),
    _row("--kv-pool-config", "json", BACKEND, "kvPoolConfig"),
    _row("--max-seq-len", "int", DEPLOY, "maxSeqLen", lo=0, open_lo=True),
    _row("--max-input-token-len", "int", DEPLOY, "maxInputTokenLen", lo=0, open_lo=True, hi_flag="--max-seq-len"),
    _row("--truncation", "bool", DEPLOY, "truncation"),
    _row("--cpu-mem-size", "int", MODEL, "cpuMemSize", lo=0),
    Param("--npu-memory-fraction", "float", lo=0, hi=1, open_lo=True, env="NPU_MEMORY_FRACTION"),
    _row("--trust-remote-code", "bool", MODEL, "trustRemoteCode"),
    _row("--models", "json", MODEL, "models"),
    _row("--async-scheduler-wait-time", "int", MODEL, "asyncSchedulerWaitTime", lo=1, hi=3600),
    _row("--cache-block-size", "int", SCHEDULE, "cacheBlockSize", lo=1, power_of_two=True),
    _row("--max-prefill-batch-size", "int", SCHEDULE, "maxPrefillBatchSize", lo=1, hi_flag="--max-batch-size"),
    _row("--max-prefill-tokens", "int", SCHEDULE, "maxPrefillTokens", lo=1, hi_flag="--max-seq-len"),
    _row("--prefill-time-ms-per-req", "int", SCHEDULE, "prefillTimeMsPerReq", lo=0, hi=1000),
    _row("--prefill-policy-type", "choice", SCHEDULE, "prefillPolicyType", choices=("0", "1", "2", "3")),
    _row("--max-batch-size", "int", SCHEDULE, "maxBatchSize", lo=1, hi=5000),
    _row("--max-iter-times", "int", SCHEDULE, "maxIterTimes", lo=1, hi_flag="--max-seq-len"),
    _row("--decode-time-ms-per-req", "int", SCHEDULE, "decodeTimeMsPerReq", lo=0, hi=1000),
    _row("--decode-policy-type", "choice", SCHEDULE, "decodePolicyType", choices=("0", "1", "2", "3")),
    _row("--max-preempt-count", "int", SCHEDULE, "maxPreemptCount", lo=0, hi_flag="--max-batch-size"),
    _row("--support-select-batch", "bool", SCHEDULE, "supportSelectBatch"),
    _row("--max-queue-delay-microseconds", "int", SCHEDULE, "maxQueueDelayMicroseconds", lo=500, hi=1000000),
    _row("--max-first-token-wait-time", "int", SCHEDULE, "maxFirstTokenWaitTime", lo=0, hi=3600000),
    Param("--override-generation-config", "json", model_file=("generation_config.json", "")),
    Param("--enforce-eager", "bool"),
    Param("--no-metrics", "bool"),
    Param("--dtype", "choice", choices=("auto", "half", "float16", "bfloat16", "float", "float32")),
    Param("--rope-scaling", "json", model_file=("config.json", "rope_scaling")),
    Param("--rope-theta", "float", lo=0, open_lo=True, model_file=("config.json", "rope_theta")),
    _row("--enable-split", "bool", SCHEDULE, "enableSplit", plugin=("splitfuse", "")),
    _row("--policy-type", "choice", SCHEDULE, "policyType", choices=("0", "4", "5", "6", "7")),
    _row("--split-chunk-tokens", "int", SCHEDULE, "splitChunkTokens", lo=1, hi=8192, multiple_of=16),
    _row("--split-start-batch-size", "int", SCHEDULE, "splitStartBatchSize", lo=0, hi_flag="--max-batch-size"),
    Param("--enable-memory-decoding", "bool", plugin=("memory_decoding", "")),
    Param("--memory-decoding-length", "int", lo=1, hi=16, plugin=("memory_decoding", "decoding_length")),
    Param("--memory-decoding-dynamic-algo", "bool", plugin=("memory_decoding", "dynamic_algo")),
    Param("--enable-lookahead", "bool", plugin=("la", "")),
    Param("--lookahead-level", "int", lo=3, hi=16, plugin=("la", "level")),
    Param("--lookahead-window", "int", lo=1, hi=16, plugin=("la", "window")),
    Param("--lookahead-guess-set-size", "int", lo=1, hi=16, plugin=("la", "guess_set_size")),
    Param("--enable-multi-token-prediction", "bool", plugin=("mtp", "")),
    Param("--multi-token-prediction-tokens", "int", lo=0, open_lo=True, plugin=("mtp", "num_speculative_tokens")),
    _row("--enable-prefix-caching", "bool", SCHEDULE, "enablePrefixCache", plugin=("prefix_cache", "")),
    _row("--pipeline-parallel-size", "int", MODEL, "pp", aliases=("-pp",), lo=0, open_lo=True),
    _row("--data-parallel-size", "int", MODEL, "dp", aliases=("-dp",), power_of_two=True),
    _row("--context-parallel-size", "int", MODEL, "cp", aliases=("-cp",), power_of_two=True),
    _row("--tensor-parallel-size", "int", MODEL, "tp", aliases=("-tp",), power_of_two=True),
    _row(
        "--sequence-parallel-size",
        "int",
        MODEL,
        "sp",
        aliases=("-sp",),
        power_of_two=True,
        hi_flag="--tensor-parallel-size",
    ),  # fmt: skip
    _row("--moe-expert-parallel-size", "int", MODEL, "moe_ep", aliases=("-moe-ep",), power_of_two=True),
    _row("--moe-tensor-parallel-size", "int", MODEL, "moe_tp", aliases=("-moe-tp",), power_of_two=True),
    _row("--enable-buffer-response", "bool", SCHEDULE, "bufferResponseEnabled"),
    _row("--prefill-expected-time-ms", "int", SCHEDULE, "prefillExpectedTime", lo=0, open_lo=True),
    _row("--decode-expected-time-ms", "int", SCHEDULE, "decodeExpectedTime", lo=0, open_lo=True),
)

BY_NAME: dict[str, Param] = {name: p for p in PARAMS for name in (p.flag, *p.aliases)}

# What --enforce-eager and --no-metrics set (MindIE reads these variables at start-up).
ENFORCE_EAGER_ENV = {
    "MINDIE_ASYNC_SCHEDULING_ENABLE": "0",
    "TASK_QUEUE_ENABLE": "0",
    "ATB_OPERATION_EXECUTE_ASYNC": "0",
    "ASCEND_LAUNCH_BLOCKING": "1",
}
METRICS_ENV = "MIES_SERVICE_MONITOR_MODE"
DTYPES = {"half": "float16", "float16": "float16", "bfloat16": "bfloat16", "float": "float32", "float32": "float32"}
