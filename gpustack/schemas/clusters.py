"""The one default cluster GPUStack clients expect (`cluster_id` 1) and its public shape."""

from datetime import datetime

from pydantic import BaseModel, field_validator

DEFAULT_CLUSTER_ID = 1
DEFAULT_CLUSTER_NAME = "default"


def check_cluster_id(value: int | None) -> int | None:
    """`cluster_id` is accepted as GPUStack clients send it: null or the default cluster's id."""
    if value is not None and value != DEFAULT_CLUSTER_ID:
        raise ValueError(f"cluster {value} does not exist; this server has one cluster, id {DEFAULT_CLUSTER_ID}")
    return value


class ClusterPublic(BaseModel):
    id: int = DEFAULT_CLUSTER_ID
    name: str = DEFAULT_CLUSTER_NAME
    description: str | None = "the server's workers"
    provider: str = "Docker"
    state: str = "ready"
    state_message: str | None = None
    is_default: bool = True
    server_url: str | None = None
    workers: int = 0
    ready_workers: int = 0
    gpus: int = 0
    models: int = 0
    created_at: datetime
    updated_at: datetime


class ClusterScoped(BaseModel):
    """Mixed into request bodies: an optional `cluster_id` that must name the default cluster."""

    cluster_id: int | None = None

    @field_validator("cluster_id")
    @classmethod
    def _cluster(cls, value: int | None) -> int | None:
        return check_cluster_id(value)


class RegistrationToken(BaseModel):
    """GPUStack's `docker run` arguments for a new worker: the token, the server URL, image, env and args."""

    token: str
    server_url: str
    image: str
    env: dict[str, str]
    args: list[str]
