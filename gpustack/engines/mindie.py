"""MindIE: backend_parameters validated against the seed's table and translated into config.json + env."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gpustack.engines.mindie_table import BY_NAME, DTYPES, ENFORCE_EAGER_ENV, INF, METRICS_ENV, PARAMS, Param

Value = bool | int | float | str | dict[str, Any]


class MindIEParamError(ValueError):
    """A backend parameter MindIE does not take, or a value outside its allowed range."""


@dataclass
class Translation:
    """MindIE's config.json, the env the daemon starts with, and patches of the model's own JSON files."""

    config: dict[str, Any]
    env: dict[str, str]
    model_files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name → keys to merge


def _tokens(params: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in params:
        item = item.strip()
        head, _, rest = item.partition(" ")
        if item.startswith("-") and "=" not in head and rest.strip():
            out += [head, rest.strip()]
        elif item:
            out.append(item)
    return out


def _range_text(p: Param) -> str:
    lo = "(" if p.open_lo else "["
    hi = ")" if p.open_hi or p.hi is None else "]"
    low = "-inf" if p.lo is None else f"{p.lo:g}"
    high = p.hi_flag or ("*" if p.hi is None else f"{p.hi:g}")
    return f"{lo}{low}, {high}{hi}"


def _number(p: Param, raw: str) -> int | float:
    try:
        value: int | float = int(raw) if p.kind == "int" else float(raw)
    except ValueError:
        raise MindIEParamError(f"MindIE parameter {p.flag} takes {'an integer' if p.kind == 'int' else 'a number'}, "
                               f"got {raw!r}") from None  # fmt: skip
    if p.power_of_two:
        if value != -1 and (value < 1 or int(value) & (int(value) - 1)):
            raise MindIEParamError(f"MindIE parameter {p.flag} must be -1 or a power of 2, got {raw}")
        return value
    lo = -INF if p.lo is None else p.lo
    hi = INF if p.hi is None else p.hi
    if value < lo or (p.open_lo and value == lo) or value > hi or (p.open_hi and value == hi):
        raise MindIEParamError(f"MindIE parameter {p.flag}={raw} is out of range {_range_text(p)}")
    if p.multiple_of and int(value) % p.multiple_of:
        raise MindIEParamError(f"MindIE parameter {p.flag}={raw} must be a multiple of {p.multiple_of}")
    return value


def _value(p: Param, raw: str) -> Value:
    if p.kind in ("int", "float"):
        return _number(p, raw)
    if p.kind == "choice":
        if raw not in p.choices:
            raise MindIEParamError(f"MindIE parameter {p.flag}={raw} is not one of: {', '.join(p.choices)}")
        return int(raw) if raw.isdigit() else raw
    if p.kind == "json":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MindIEParamError(f"MindIE parameter {p.flag} takes a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise MindIEParamError(f"MindIE parameter {p.flag} takes a JSON object, got {raw!r}")
        return data
    return raw


def _lookup(name: str) -> tuple[Param, bool]:
    """The row of a flag and whether it was spelled `--no-<flag>` (switches only)."""
    if name in BY_NAME:
        return BY_NAME[name], True
    if name.startswith("--no-") and (p := BY_NAME.get("--" + name[5:])) and p.kind == "bool":
        return p, False
    known = ", ".join(p.flag for p in PARAMS)
    raise MindIEParamError(f"MindIE does not take the parameter {name}; GPUStack's MindIE parameters are: {known}")


def parse(params: Iterable[str]) -> dict[str, Value]:
    """Canonical flag → value for each parameter; MindIEParamError names the flag and its allowed values."""
    tokens, i = _tokens(params), 0
    values: dict[str, Value] = {}
    while i < len(tokens):
        name, eq, inline = tokens[i].partition("=")
        p, on = _lookup(name)
        if p.kind == "bool":
            if eq:
                raise MindIEParamError(f"MindIE parameter {name} is a switch and takes no value")
            values[p.flag] = on
            i += 1
            continue
        raw = inline if eq else (tokens[i + 1] if i + 1 < len(tokens) else None)
        if raw is None or (not eq and raw.startswith("--")):
            raise MindIEParamError(f"MindIE parameter {name} needs a value")
        values[p.flag] = _value(p, raw)
        i += 1 if eq else 2
    _check_bounds(values)
    return values


def _check_bounds(values: dict[str, Value]) -> None:
    """Bounds that depend on another flag (e.g. --max-prefill-tokens <= --max-seq-len), when both are set."""
    for p in PARAMS:
        if p.hi_flag and p.flag in values and p.hi_flag in values:
            value, bound = values[p.flag], values[p.hi_flag]
            if isinstance(value, int | float) and isinstance(bound, int | float) and value > bound:
                raise MindIEParamError(f"MindIE parameter {p.flag}={value} must be at most {p.hi_flag} ({bound})")


def validate(params: Iterable[str]) -> None:
    """Raise MindIEParamError for parameters a MindIE deployment would refuse (used at model create)."""
    parse(params)


def base_config(*, model_name: str, weight_path: str, host: str, port: int, npus: int) -> dict[str, Any]:
    """The config.json every deployment starts from: one port for the API, management and metrics,
    HTTPS off (the worker proxies on the host), one model instance across the placed NPUs."""
    world = max(npus, 1)
    return {
        "Version": "1.0.0",
        "LogConfig": {"logLevel": "Info"},
        "ServerConfig": {
            "ipAddress": host, "managementIpAddress": host, "port": port, "managementPort": port,
            "metricsPort": port, "allowAllZeroIpListening": host == "0.0.0.0", "maxLinkNum": 1000,
            "httpsEnabled": False, "interCommTLSEnabled": False, "tokenTimeout": 600, "e2eTimeout": 600,
        },
        "BackendConfig": {
            "backendName": "mindieservice_llm_engine", "modelInstanceNumber": 1,
            "npuDeviceIds": [list(range(world))], "multiNodesInferEnabled": False, "interNodeTLSEnabled": False,
            "ModelDeployConfig": {
                "maxSeqLen": 8192, "maxInputTokenLen": 8192, "truncation": False,
                "ModelConfig": [{
                    "modelInstanceType": "Standard", "modelName": model_name, "modelWeightPath": weight_path,
                    "worldSize": world, "cpuMemSize": 0, "npuMemSize": -1, "backendType": "atb",
                    "trustRemoteCode": False,
                }],
            },
            "ScheduleConfig": {
                "templateType": "Standard", "templateName": "Standard_LLM", "cacheBlockSize": 128,
                "maxPrefillBatchSize": 50, "maxPrefillTokens": 8192, "prefillTimeMsPerReq": 150,
                "prefillPolicyType": 0, "decodeTimeMsPerReq": 50, "decodePolicyType": 0, "maxBatchSize": 200,
                "maxIterTimes": 8192, "maxPreemptCount": 0, "supportSelectBatch": False,
                "maxQueueDelayMicroseconds": 5000, "maxFirstTokenWaitTime": 2500,
            },
        },
    }  # fmt: skip


def _section(config: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    node: Any = config
    for key in path:
        node = node[key]
    return node


def _plugins(values: dict[str, Value]) -> dict[str, Any] | None:
    """MindIE's plugin_params: the enabled plugins' types, comma-joined, with their options."""
    enabled: list[str] = []
    options: dict[str, Any] = {}
    for p in PARAMS:
        if p.plugin is None or p.flag not in values:
            continue
        kind, key = p.plugin
        if not key and values[p.flag] is True:
            enabled.append(kind)
    for p in PARAMS:
        if p.plugin and p.plugin[1] and p.flag in values and p.plugin[0] in enabled:
            options[p.plugin[1]] = values[p.flag]
    return {"plugin_type": ",".join(enabled), **options} if enabled else None


def _derived(config: dict[str, Any], values: dict[str, Value]) -> None:
    """Defaults that follow --max-seq-len when the user did not set them (as the table says)."""
    deploy, schedule = (
        _section(config, ("BackendConfig", "ModelDeployConfig")),
        config["BackendConfig"]["ScheduleConfig"],
    )
    seq = deploy["maxSeqLen"]
    if "--max-prefill-tokens" not in values:
        schedule["maxPrefillTokens"] = seq
    if "--max-iter-times" not in values:
        schedule["maxIterTimes"] = seq
    if "--max-input-token-len" not in values:
        deploy["maxInputTokenLen"] = min(seq, schedule["maxPrefillTokens"])


def translate(values: dict[str, Value], config: dict[str, Any]) -> Translation:
    """Apply parsed parameters to a base config: table targets, env, plugins and model-file patches."""
    env = {METRICS_ENV: "0" if values.get("--no-metrics") else "1"}
    files: dict[str, dict[str, Any]] = {}
    for p in PARAMS:
        if p.flag not in values:
            continue
        value = values[p.flag]
        if p.target:
            path, key = p.target
            _section(config, path)[key] = value
        if p.env:
            env[p.env] = str(value)
        if p.model_file:
            name, key = p.model_file
            files.setdefault(name, {}).update(value if not key and isinstance(value, dict) else {key: value})
    if level := values.get("--log-level"):
        env["MINDIE_LOG_LEVEL"] = str(level).lower()
    if values.get("--enforce-eager"):
        env.update(ENFORCE_EAGER_ENV)
    if (dtype := values.get("--dtype")) and dtype != "auto":
        files.setdefault("config.json", {})["torch_dtype"] = DTYPES[str(dtype)]
    if plugins := _plugins(values):
        _section(config, ("BackendConfig", "ModelDeployConfig", "ModelConfig", 0))["plugin_params"] = json.dumps(
            plugins, separators=(",", ":")
        )
    _derived(config, values)
    return Translation(config=config, env=env, model_files=files)
