"""Instance log helpers: safe paths, reading the last lines, following appended output."""

import asyncio
from pathlib import Path

from gpustack.worker.logs import follow, instance_log_path, read_tail, tail_text


def test_log_path_is_safe(tmp_path: Path) -> None:
    path = instance_log_path(tmp_path, "org/model:q4-abc")
    assert path == tmp_path / "logs" / "instances" / "org_model_q4-abc.log"


def test_read_tail(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    assert read_tail(path, 2) == (b"two\nthree\n", 14)
    assert read_tail(path, 10) == (b"one\ntwo\nthree\n", 14)
    assert read_tail(path, 0) == (b"", 14)
    assert read_tail(path, -1) == (b"one\ntwo\nthree\n", 14)
    path.write_bytes(b"one\ntwo\npartial")
    assert read_tail(path, 2) == (b"two\npartial", 15)
    assert read_tail(tmp_path / "missing.log", 5) == (b"", 0)


def test_read_tail_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    lines = [f"line {i} " + "x" * 100 for i in range(3000)]
    path.write_text("\n".join(lines) + "\n")
    data, _ = read_tail(path, 1500)
    assert data.decode().splitlines() == lines[-1500:]


def test_tail_text_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("start\n" + "y" * 5000 + "\nlast line\n")
    text = tail_text(path, 5, max_chars=100)
    assert len(text) == 100 and text.endswith("last line")


async def test_follow_reads_appends_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"old\n")
    seen: list[bytes] = []
    done = asyncio.Event()

    async def stop() -> bool:
        return done.is_set()

    async def reader() -> None:
        async for chunk in follow(path, 4, stop, poll=0.01):
            seen.append(chunk)

    task = asyncio.create_task(reader())
    with path.open("ab") as fh:
        fh.write(b"new line\n")
    while b"".join(seen) != b"new line\n":
        await asyncio.sleep(0.01)
    path.write_bytes(b"fresh\n")  # truncated and rewritten: read from the start
    while not b"".join(seen).endswith(b"fresh\n"):
        await asyncio.sleep(0.01)
    done.set()
    await asyncio.wait_for(task, 2)
