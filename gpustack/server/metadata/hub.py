"""Model metadata from Hugging Face and ModelScope: the file listing's sizes, config.json, and the
safetensors / GGUF headers by range requests (never the weights). Blocking calls: run them in a thread,
outside any DB transaction.

Hugging Face goes through `huggingface_hub` (HF_ENDPOINT picks a mirror, HF_TOKEN authenticates);
ModelScope through its REST API (MODELSCOPE_DOMAIN picks the site, as the modelscope package does).
"""

import fnmatch
import importlib
import os
from dataclasses import dataclass
from typing import Any

import httpx
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import SafetensorsParsingError
from huggingface_hub.utils import build_hf_headers

from gpustack.scheduler.estimate.gguf_header import header_to_dict, read_header_from
from gpustack.scheduler.estimate.metadata import ModelMetadata, select_weight_files
from gpustack.server.metadata.ranged import RangedFile

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
MODELSCOPE_DEFAULT_DOMAIN = "www.modelscope.cn"
MAX_HEADER_FILES = 64  # more weight files than this: sizes from the listing, no per-file header request
_GLOB = set("*?[")


def _transport_errors() -> tuple[type[Exception], ...]:
    """httpx's errors, and httpx2's: huggingface_hub 2 talks through httpx2."""
    errors: list[type[Exception]] = [httpx.HTTPError]
    try:
        errors.append(importlib.import_module("httpx2").HTTPError)
    except ImportError:
        pass
    return tuple(errors)


FETCH_ERRORS: tuple[type[Exception], ...] = (
    *_transport_errors(),
    OSError,
    ValueError,
    TimeoutError,
    SafetensorsParsingError,
)
"""What a failed fetch raises: unreachable, refused (4xx/5xx), or an answer that is not model metadata."""


@dataclass(frozen=True)
class Fetched:
    metadata: ModelMetadata
    commit_sha: str | None


def selected(names: list[str], selection: str) -> set[str] | None:
    """The files a model's filename/pattern picks (None: the whole repository), as the worker downloads."""
    if not selection:
        return None
    if _GLOB & set(selection):
        return {n for n in names if fnmatch.fnmatch(n, selection)}
    return {n for n in names if n == selection}


def hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def fetch_huggingface(repo_id: str, selection: str, *, revision: str = "main", timeout: float = 10.0) -> Fetched:
    """The metadata of one Hugging Face model version; raises (httpx / huggingface_hub errors, ValueError)
    when the hub cannot answer or the repository has no weights."""
    endpoint = hf_endpoint()
    api = HfApi(endpoint=endpoint)
    info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout)
    listing = {s.rfilename: int(s.size or 0) for s in info.siblings or ()}
    kind, files = select_weight_files(listing, selected(list(listing), selection))
    sha = info.sha or revision
    headers = build_hf_headers()
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:

        def url(name: str) -> str:
            return hf_hub_url(repo_id, name, revision=sha, endpoint=endpoint)

        config = _config(_json(client, url("config.json"), headers)) if "config.json" in listing else None
        meta = _with_headers(kind, files, config, client, url, headers, api=api, repo_id=repo_id, sha=sha)
    return Fetched(meta, info.sha)


def _with_headers(
    kind: str, files: dict[str, int], config: dict[str, Any] | None, client: httpx.Client, url: Any,
    headers: dict[str, str], *, api: HfApi, repo_id: str, sha: str,
) -> ModelMetadata:  # fmt: skip
    """Exact tensor bytes from safetensors headers, GGUF header summaries; listing sizes otherwise."""
    weights = sum(files.values())
    gguf: list[dict[str, Any]] = []
    if kind == "safetensors" and len(files) <= MAX_HEADER_FILES:
        weights = 0
        for name in files:
            parsed = api.parse_safetensors_file_metadata(repo_id, name, revision=sha, timeout=client.timeout.read)
            weights += sum(t.data_offsets[1] - t.data_offsets[0] for t in parsed.tensors.values())
    elif kind == "gguf" and len(files) <= MAX_HEADER_FILES:
        gguf = _gguf_headers(client, url, files, headers)
    return ModelMetadata(format=kind, weights_bytes=weights, files=files, config=config, gguf_headers=gguf)


def _gguf_headers(client: httpx.Client, url: Any, files: dict[str, int], headers: dict[str, str]) -> list[Any]:
    """Header summaries of every part, or none when one cannot be read remotely (then GPUStack's rule)."""
    out = []
    for name, size in files.items():
        try:
            out.append(header_to_dict(read_header_from(RangedFile(client, url(name), size, headers), size)))  # type: ignore[arg-type]
        except (ValueError, httpx.HTTPStatusError):  # no ranges, a huge header: GPUStack's rule instead
            return []
    return out


def _json(client: httpx.Client, url: str, headers: dict[str, str], params: dict[str, str] | None = None) -> Any:
    response = client.get(url, headers=headers, params=params)
    response.raise_for_status()
    try:
        return response.json()
    except ValueError as exc:
        raise ValueError(f"{url}: not JSON ({exc})") from None


def _config(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("config.json is not a JSON object")
    return value


def modelscope_endpoint() -> str:
    domain = (os.environ.get("MODELSCOPE_DOMAIN") or MODELSCOPE_DEFAULT_DOMAIN).rstrip("/")
    return domain if domain.startswith(("http://", "https://")) else f"https://{domain}"


def fetch_modelscope(model_id: str, selection: str, *, revision: str = "master", timeout: float = 10.0) -> Fetched:
    """The metadata of one ModelScope model: the repository's file listing and config.json (sizes from
    the listing; ModelScope's file URLs are not read by range)."""
    base = f"{modelscope_endpoint()}/api/v1/models/{model_id}/repo"
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        answer = _json(client, f"{base}/files", {}, {"Revision": revision, "Recursive": "True"})
        try:
            entries = answer["Data"]["Files"]
            listing = {str(e["Path"]): int(e.get("Size") or 0) for e in entries if e.get("Type", "blob") == "blob"}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"ModelScope answered an unexpected file listing ({exc})") from None
        kind, files = select_weight_files(listing, selected(list(listing), selection))
        config = None
        if "config.json" in listing:
            config = _config(_json(client, base, {}, {"Revision": revision, "FilePath": "config.json"}))
    meta = ModelMetadata(format=kind, weights_bytes=sum(files.values()), files=files, config=config)
    return Fetched(meta, None)
