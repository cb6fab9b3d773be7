"""Config precedence (flags > env > YAML > defaults) and validation."""

import errno
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from gpustack.config import Config, SecretFileError


def test_defaults_put_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path)
    assert config.resolved_database_url() == f"sqlite:///{tmp_path / 'database.db'}"
    assert config.port == 8080 and config.server_url is None


def test_flag_beats_env_beats_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "gpustack.yaml"
    cfg.write_text("port: 9001\nhost: 127.0.0.2\nworker-port: 10999\nlog_level: debug\n")
    monkeypatch.setenv("GPUSTACK_PORT", "9002")
    monkeypatch.setenv("GPUSTACK_HOST", "127.0.0.3")
    config = Config(config_file=str(cfg), port=9003)
    assert config.port == 9003  # flag
    assert config.host == "127.0.0.3"  # env over file
    assert config.worker_port == 10999  # file, dashed key
    assert config.log_level == "debug"


def test_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("disable_worker: true\n")
    monkeypatch.setenv("GPUSTACK_CONFIG_FILE", str(cfg))
    assert Config().disable_worker is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": 70000},
        {"database_url": "oracle://x"},
        {"gpu_runtime_overhead": "a lot"},
        {"gpu_headroom": "-1GiB"},
        {"runtime": "podman"},
        {"instance_port_range": "5-1"},
        {"instance_port_range": "abc"},
        {"no_such_option": 1},
    ],
)
def test_invalid_values_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Config(**kwargs)  # type: ignore[arg-type]


def test_token_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Config(data_dir=tmp_path).ensure_token()
    assert len(first) >= 32
    assert Config(data_dir=tmp_path).ensure_token() == first
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert Config(data_dir=tmp_path, token="given").ensure_token() == "given"


@pytest.mark.parametrize("content", [b"", b"\n", b"0123456789abcdef0123456789abcde\n"])
def test_short_secret_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    """A zero-byte key (first start on a full disk) would sign cookies with b"": refuse it."""
    (tmp_path / "secret_key").write_bytes(content)
    with pytest.raises(SecretFileError) as caught:
        Config(data_dir=tmp_path).secret_key()
    assert str(tmp_path / "secret_key") in str(caught.value) and "delete it" in str(caught.value)


def test_empty_token_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_bytes(b"")
    with pytest.raises(SecretFileError, match="--token"):
        Config(data_dir=tmp_path).ensure_token()


def test_secret_key_is_generated_once_private_and_long(tmp_path: Path) -> None:
    key = Config(data_dir=tmp_path / "new").secret_key()
    assert len(key) == 64 and Config(data_dir=tmp_path / "new").secret_key() == key
    assert (tmp_path / "new" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["secret_key"]  # no temporary file left


def test_full_disk_leaves_no_truncated_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while writing: the start fails and no file is left behind; the next start writes a whole key."""

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", no_space)
        with pytest.raises(SecretFileError, match="No space left"):
            Config(data_dir=tmp_path).secret_key()
        with pytest.raises(SecretFileError, match="No space left"):
            Config(data_dir=tmp_path).ensure_token()
    assert list(tmp_path.iterdir()) == []
    assert len(Config(data_dir=tmp_path).secret_key()) == 64


def test_token_can_come_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text("  from-file\n")
    assert Config(token_file=token_file).token == "from-file"
    assert Config(token_file=token_file, token="given").token == "given"  # a token given directly wins
    monkeypatch.setenv("GPUSTACK_TOKEN_FILE", str(token_file))
    assert Config().token == "from-file"
    monkeypatch.setenv("GPUSTACK_TOKEN", "from-env")
    assert Config().token == "from-env"


@pytest.mark.parametrize("content", [None, "", "  \n"], ids=["missing", "empty", "blank"])
def test_a_missing_or_empty_token_file_is_refused(tmp_path: Path, content: str | None) -> None:
    token_file = tmp_path / "token.txt"
    if content is not None:
        token_file.write_text(content)
    with pytest.raises(ValidationError, match="token file"):
        Config(token_file=token_file)
