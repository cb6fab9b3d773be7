"""The worker's answer to "what is at this path?": weight bytes, config.json and GGUF header summaries,
so the server can estimate a model whose files only this worker has (nothing is loaded, only headers)."""

import asyncio
from pathlib import Path

from fastapi.responses import JSONResponse

from gpustack.scheduler.estimate.gguf import split_parts
from gpustack.scheduler.estimate.gguf_header import header_to_dict, read_header
from gpustack.scheduler.estimate.metadata import GGUF_SUFFIX, ModelMetadata
from gpustack.scheduler.estimate.safetensors import read_config, weights_bytes

_READ_ERRORS = (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError)


def _gguf(path: Path) -> ModelMetadata:
    parts = split_parts(path)
    headers = []
    for part in parts:
        try:
            headers.append(header_to_dict(read_header(part)))
        except _READ_ERRORS as exc:
            raise ValueError(f"{part}: not a readable GGUF file ({exc})") from exc
    files = {str(p): p.stat().st_size for p in parts}
    return ModelMetadata(format="gguf", weights_bytes=sum(files.values()), files=files, gguf_headers=headers)


def _directory(path: Path) -> ModelMetadata:
    config = read_config(path)
    safetensors = sorted(path.glob("*.safetensors"))
    weight_files = safetensors or [f for f in sorted(path.iterdir()) if f.suffix in (".bin", ".pt", ".pth")]
    files = {str(f): f.stat().st_size for f in weight_files}
    kind = "safetensors" if safetensors else "pytorch"
    return ModelMetadata(format=kind, weights_bytes=weights_bytes(path), files=files, config=config)


def measure_path(path: str, *, prefer_gguf: bool) -> ModelMetadata:
    """What an estimate needs of `path` (a GGUF file, or a directory of GGUF or config.json + weights).
    FileNotFoundError when it is not here, ValueError when it holds no model."""
    target = Path(path)
    if not target.is_absolute():
        raise ValueError(f"path must be absolute, got {path!r}")
    if target.is_file():
        if target.suffix != GGUF_SUFFIX:
            raise ValueError(f"{path} is a file but not a GGUF file")
        return _gguf(target)
    if not target.is_dir():
        raise FileNotFoundError(path)
    ggufs = sorted(target.glob(f"*{GGUF_SUFFIX}"))
    if ggufs and (prefer_gguf or not (target / "config.json").is_file()):
        return _gguf(ggufs[0])
    return _directory(target)


async def model_metadata(path: str, prefer: str = "weights") -> JSONResponse:
    """GET /model-metadata?path=...&prefer=gguf|weights (proxy credential required)."""
    try:
        meta = await asyncio.to_thread(measure_path, path, prefer_gguf=prefer == "gguf")
    except FileNotFoundError:
        return JSONResponse({"detail": f"{path} does not exist on this worker"}, status_code=404)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    except OSError as exc:
        return JSONResponse({"detail": f"cannot read {path}: {exc.strerror or exc}"}, status_code=422)
    return JSONResponse(meta.to_dict())
