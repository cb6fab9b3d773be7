"""Instance log files: their paths, reading the last lines, and following appended output."""

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_BLOCK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.5


def instance_log_path(data_dir: Path, instance_name: str) -> Path:
    """<data_dir>/logs/instances/<name>.log; characters unsafe in file names become '_'."""
    return Path(data_dir) / "logs" / "instances" / f"{_UNSAFE.sub('_', instance_name)}.log"


def rotate(path: Path, max_bytes: int, backups: int) -> bool:
    """Copy-truncate `path` once it outgrows `max_bytes`, keeping `backups` older files (.1 newest).

    Engines append with O_APPEND, so after the truncation they keep writing at the new end; the few
    bytes written between the copy and the truncation are lost. Returns True when it rotated.
    """
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{i + 1}"))
    if backups > 0:
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)
    return True


def read_tail(path: Path, lines: int) -> tuple[bytes, int]:
    """The last `lines` lines (all when negative) and the file size they end at; (b"", 0) if missing."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if lines < 0:
                fh.seek(0)
                return fh.read(size), size
            if lines == 0:
                return b"", size
            return _last_lines(fh, size, lines), size
    except FileNotFoundError:
        return b"", 0


def _last_lines(fh: BinaryIO, size: int, lines: int) -> bytes:
    """Read blocks backwards from `size` until `lines` line breaks (plus a partial last line) are in."""
    data = b""
    pos = size
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        fh.seek(pos)
        data = fh.read(step) + data
        # one extra break: the text before the first kept line ends with it
        if data.count(b"\n", 0, len(data) - 1) >= lines:
            break
    parts = data.split(b"\n")
    trailing = data.endswith(b"\n")
    kept = parts[-(lines + 1) : -1] if trailing else parts[-lines:]
    return b"\n".join(kept) + (b"\n" if trailing and kept else b"")


def tail_text(path: Path, lines: int, max_chars: int = 2000) -> str:
    """The last lines of a log as text, for error messages (at most `max_chars`, cut at the start)."""
    data, _ = read_tail(path, lines)
    text = data.decode("utf-8", errors="replace").strip()
    return text[-max_chars:]


async def follow(
    path: Path, offset: int, stop: Callable[[], Awaitable[bool]], poll: float = FOLLOW_POLL_SECONDS
) -> AsyncIterator[bytes]:
    """Bytes appended to `path` after `offset` until `stop()` is true; starts over if truncated."""
    while not await stop():
        chunk, offset = await asyncio.to_thread(_read_from, path, offset)
        if chunk:
            yield chunk
        else:
            await asyncio.sleep(poll)


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size < offset:  # truncated or replaced: read the new file from its start
                offset = 0
            fh.seek(offset)
            chunk = fh.read(min(size - offset, 1024 * 1024))
    except FileNotFoundError:
        return b"", 0
    return chunk, offset + len(chunk)
