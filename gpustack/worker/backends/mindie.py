"""MindIE backend (Ascend NPUs): `mindieservice_daemon` with a config.json built from backend_parameters."""

import json
from pathlib import Path
from typing import Any

from gpustack.engines.mindie import Translation, base_config, parse, translate
from gpustack.worker.backends._common import base_spec, fraction, model_mounts
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

DAEMON = "mindieservice_daemon"
IMAGE_DAEMON = "/usr/local/Ascend/mindie/latest/mindie-service/bin/mindieservice_daemon"
CONFIG_ENV = "MIES_CONFIG_JSON_PATH"  # where the daemon reads its config.json from


Pairs = list[tuple[str, str]]


def _overlay(ctx: LaunchContext, patches: dict[str, dict[str, Any]]) -> tuple[Path, Pairs, Pairs]:
    """A directory that is the model directory with patched JSON files (--dtype, --rope-*, generation
    config): every other entry links to the original, which stays untouched (it may be read-only)."""
    source, overlay = Path(ctx.model_path), ctx.work_dir / "model"
    files: Pairs = []
    for name, patch in sorted(patches.items()):
        try:
            original = json.loads((source / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            original = {}
        files.append((str(overlay / name), json.dumps({**original, **patch}, indent=2)))
    entries = sorted(source.iterdir()) if source.is_dir() else []
    links = [(str(overlay / e.name), str(e)) for e in entries if e.name not in patches]
    return overlay, files, links


def mindie_translation(ctx: LaunchContext) -> Translation:
    """The user's parameters over the base config, with the claim's context and NPU memory fraction."""
    values = parse(ctx.backend_parameters)
    if ctx.context_size and "--max-seq-len" not in values:
        values["--max-seq-len"] = ctx.context_size
    if ctx.vram_utilization and "--npu-memory-fraction" not in values:
        values["--npu-memory-fraction"] = float(fraction(ctx.vram_utilization))
    config = base_config(
        model_name=ctx.model_name, weight_path=ctx.model_path, host=ctx.host, port=ctx.port, npus=len(ctx.gpu_indexes)
    )
    return translate(values, config)


@register("mindie")
def build(ctx: LaunchContext) -> LaunchSpec:
    """`mindieservice_daemon` (on PATH, or inside ctx.image_name) reading the config.json written to the
    instance's work dir; health /info. Bad parameters raise ValueError (refused at model create already)."""
    result = mindie_translation(ctx)
    files: Pairs = []
    links: Pairs = []
    if result.model_files:
        overlay, files, links = _overlay(ctx, result.model_files)
        result.config["BackendConfig"]["ModelDeployConfig"]["ModelConfig"][0]["modelWeightPath"] = str(overlay)
    config_path = ctx.work_dir / "mindie-config.json"
    files.append((str(config_path), json.dumps(result.config, indent=2)))
    argv = [IMAGE_DAEMON if ctx.image_name else DAEMON]
    env = {**result.env, CONFIG_ENV: str(config_path)}
    spec = base_spec(ctx, argv, health_path="/info", env=env, files=tuple(files))
    mounts = (*model_mounts(ctx), str(ctx.work_dir)) if ctx.image_name else ()
    return LaunchSpec(**{**vars(spec), "links": tuple(links), "mounts": mounts})
