"""Asks workers what is at a local path the server cannot read (GET /model-metadata on the worker port,
with the same proxy credential as logs and the proxy)."""

from dataclasses import dataclass

import httpx

from gpustack.scheduler.estimate.metadata import ModelMetadata


@dataclass(frozen=True)
class WorkerTarget:
    name: str
    url: str  # http://<ip>:<port>
    credential: str


class NotOnWorker(Exception):
    """The worker answered that it does not have the path."""


async def fetch_from_worker(
    target: WorkerTarget, path: str, *, prefer_gguf: bool, timeout: float = 10.0
) -> ModelMetadata:
    """The worker's measurement of `path`; NotOnWorker on 404, ValueError with the worker's reason on
    another refusal, httpx errors when it cannot be reached."""
    params = {"path": path, "prefer": "gguf" if prefer_gguf else "weights"}
    headers = {"authorization": f"Bearer {target.credential}"}
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.get(f"{target.url}/model-metadata", params=params, headers=headers)
    if response.status_code == 404:
        raise NotOnWorker(f"{path} is not on worker {target.name}")
    if response.status_code != 200:
        raise ValueError(f"worker {target.name} answered {response.status_code}: {_detail(response)}")
    return ModelMetadata.from_dict(response.json())


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:300]
    except ValueError:
        return response.text[:300]


async def measure_on_workers(
    targets: list[WorkerTarget], path: str, *, prefer_gguf: bool, timeout: float
) -> tuple[ModelMetadata, str]:
    """Asks the workers in order; the first that has `path` answers (metadata, worker name). Raises
    ValueError naming each worker's answer when none has it."""
    answers = []
    for target in targets:
        try:
            return await fetch_from_worker(target, path, prefer_gguf=prefer_gguf, timeout=timeout), target.name
        except NotOnWorker:
            answers.append(f"{target.name}: not there")
        except httpx.HTTPError as exc:
            answers.append(f"{target.name}: unreachable ({type(exc).__name__})")
    if not answers:
        raise ValueError("no ready worker to ask")
    raise ValueError("; ".join(answers))
