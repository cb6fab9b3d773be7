"""Crash-safe writes of small private files (secrets, tokens, engine records)."""

import contextlib
import os
import tempfile
from pathlib import Path


def write_private_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` (mode 0600) so that readers see the old file or the whole new one.

    The text goes to a temporary file in the same directory, is fsynced, then renamed over `path`;
    the directory is fsynced too so the rename survives a power loss. A full disk fails here with
    OSError and leaves `path` as it was (absent or complete), never truncated.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform opens directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
