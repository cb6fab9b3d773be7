"""One typed settings object: CLI flags > GPUSTACK_* env vars > YAML config file > defaults."""

import os
import secrets
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gpustack.core.files import write_private_atomic
from gpustack.core.sizes import parse_size

MIN_SECRET_KEY_BYTES = 32  # signing key (generated: 64 hex characters)
MIN_TOKEN_CHARS = 16  # cluster token read from the data dir (generated: 32 hex characters)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gpustack"


class YamlSource(PydanticBaseSettingsSource):
    """Reads the file named by `config_file` (flag or GPUSTACK_CONFIG_FILE)."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | None):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path:
            return {}
        try:
            data = yaml.safe_load(Path(self.path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read config file {self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"config file {self.path} must hold a mapping of option: value")
        return {k.replace("-", "_"): v for k, v in data.items()}


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUSTACK_", extra="forbid")

    config_file: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    database_url: str | None = None
    bootstrap_password: str | None = None
    token: str | None = None
    token_file: Path | None = None
    server_url: str | None = None
    disable_worker: bool = False
    log_level: str = "info"
    openai_max_body_mib: int = Field(default=100, ge=1, le=4096)
    # worker
    worker_name: str | None = None
    worker_ip: str | None = None
    worker_port: int = Field(default=10150, ge=1, le=65535)
    instance_port_range: str = "40000-40999"
    gpu_inventory: Path | None = None
    runtime: str = "process"
    image_registry: str | None = None  # docker runtime: pull built-in backend images from this registry
    image_namespace: str | None = None  # ... and under this namespace (e.g. a mirror's project)
    gpu_runtime_overhead: str = "640MiB"  # GPU memory per engine process beside its buffers (claims add it)
    gpu_headroom: str = "256MiB"  # GPU memory the scheduler never claims on this worker's GPUs
    # controllers
    heartbeat_interval_seconds: float = Field(default=10.0, gt=0)
    heartbeat_grace_seconds: float = Field(default=45.0, gt=0)
    reschedule_after_seconds: float = Field(default=120.0, ge=0)
    scheduler_scan_seconds: float = Field(default=15.0, gt=0)
    resync_seconds: float = Field(default=60.0, gt=0)
    # gateway: past this, a request without response headers probes its worker and fails over if silent
    gateway_first_byte_timeout_seconds: float = Field(default=5.0, gt=0)
    # observability: /metrics takes admin credentials or this bearer token; metrics_auth=false opens it
    metrics_token: str | None = None
    metrics_auth: bool = True
    usage_metering: bool = True  # record every OpenAI request (user, key, model, tokens) for /v2/usage
    usage_retention_days: int = Field(default=90, ge=1)  # raw records; rollups are kept
    usage_flush_seconds: float = Field(default=1.0, gt=0)  # the usage writer's batch interval
    gpu_history_interval_seconds: float = Field(default=60.0, gt=0)
    gpu_history_retention_days: int = Field(default=7, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_kwargs = getattr(init_settings, "init_kwargs", {})
        path = init_kwargs.get("config_file") or os.environ.get("GPUSTACK_CONFIG_FILE")
        return init_settings, env_settings, YamlSource(settings_cls, path)

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        if value not in ("process", "docker"):
            raise ValueError("runtime must be 'process' or 'docker'")
        return value

    @field_validator("gpu_runtime_overhead", "gpu_headroom")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_TOKEN_CHARS:
            raise ValueError(f"metrics_token must have at least {MIN_TOKEN_CHARS} characters")
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        if value and value.split("://", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql", "mysql"):
            raise ValueError("database_url must start with sqlite://, postgresql:// or mysql://")
        return value

    @model_validator(mode="after")
    def _ports(self) -> "Config":
        self.port_range()
        return self

    @model_validator(mode="after")
    def _token_from_file(self) -> "Config":
        """`token_file` keeps the token out of `ps` output; a token given directly wins."""
        if self.token is None and self.token_file is not None:
            try:
                token = self.token_file.read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read token file {self.token_file}: {exc}") from None
            if not token:
                raise ValueError(f"token file {self.token_file} is empty")
            self.token = token
        return self

    def port_range(self) -> tuple[int, int]:
        try:
            low, high = (int(p) for p in self.instance_port_range.split("-", 1))
        except ValueError:
            raise ValueError("instance_port_range must look like 40000-40999") from None
        if not 1 <= low <= high <= 65535:
            raise ValueError("instance_port_range must be within 1-65535 and low <= high")
        return low, high

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'database.db'}"

    def ensure_token(self) -> str:
        """The cluster registration token: given, else read from or written to the data dir."""
        if self.token:
            return self.token
        path = self.data_dir / "token"
        if not path.exists():
            _create_secret(path, secrets.token_hex(16))
        self.token = _read_secret(
            path,
            MIN_TOKEN_CHARS,
            "delete it and start again to generate a new token (then start workers with the new one), "
            "or pass the token with --token",
        )
        return self.token

    def secret_key(self) -> bytes:
        """Server-only signing key for session cookies and worker proxy credentials."""
        path = self.data_dir / "secret_key"
        if not path.exists():
            _create_secret(path, secrets.token_hex(32))
        advice = "restore it from a backup, or delete it and start again to generate a new key (signs every user out)"
        return _read_secret(path, MIN_SECRET_KEY_BYTES, advice).encode()


class SecretFileError(ValueError):
    """A secret file in the data dir is unreadable, empty or too short to be trusted."""


def _create_secret(path: Path, value: str) -> None:
    try:
        write_private_atomic(path, value + "\n")
    except OSError as exc:
        advice = "free some space or fix the permissions of the data dir, then start again"
        raise SecretFileError(f"cannot write {path}: {exc}; {advice}") from exc


def _read_secret(path: Path, minimum: int, advice: str) -> str:
    """The stripped content of a secret file; SecretFileError when it is shorter than `minimum`."""
    try:
        value = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(f"cannot read {path}: {exc}") from exc
    if len(value) < minimum:
        raise SecretFileError(
            f"{path} holds {len(value)} characters, fewer than the {minimum} a secret needs "
            f"(an earlier start on a full disk can leave it cut short); {advice}"
        )
    return value
