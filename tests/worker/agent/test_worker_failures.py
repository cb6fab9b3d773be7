"""A failed engine's message: the cause kept even when it is far from the end, repeats folded; log rotation."""

from pathlib import Path

from gpustack.worker.failures import failure_excerpt, fold_repeats
from gpustack.worker.logs import rotate

# What an H100 engine printed when it ran out of memory: the cause 27 lines above the end.
OOM_LOG = (
    "--- gpustack 2026-11-20 10:00:00: starting python -m llama_cpp.server --model old.gguf\n"
    "error: an earlier run's failure that must not be reported again\n"
    "--- gpustack 2026-11-20 10:01:00: starting python -m llama_cpp.server --model m.gguf\n"
    "llama_model_load: loading model\n"
    "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 2048.00 MiB on device 0: cudaMalloc failed: out of memory\n"
    "llama_model_load: error loading model: unable to allocate CUDA0 buffer\n"
    + "".join(f'  File "/usr/lib/python3/llama_cpp/x{i}.py", line {i}, in load\n' for i in range(25))
    + "ValueError: Failed to load model from file: m.gguf\n"
)


def test_the_cause_is_kept_when_it_is_far_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text(OOM_LOG)
    text = failure_excerpt(log, error_lines=10, tail_lines=5)
    assert "cudaMalloc failed: out of memory" in text
    assert "error loading model" in text
    assert text.endswith("ValueError: Failed to load model from file: m.gguf")
    assert "earlier run" not in text  # only the last run counts
    assert len(text.splitlines()) <= 10 + 1 + 5


def test_repeated_lines_are_folded(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_text("server listening\n" + "CUDA Graph id 90 reused\n" * 20 + "Killed\n")
    text = failure_excerpt(log)
    assert text.count("CUDA Graph id 90 reused") == 1
    assert "CUDA Graph id 90 reused (repeated 20 times)" in text
    assert text.splitlines()[-1] == "Killed"


def test_fold_repeats_only_folds_runs() -> None:
    assert fold_repeats(["a", "a", "b", "a"]) == ["a (repeated 2 times)", "b", "a"]
    assert fold_repeats([]) == []


def test_missing_log_gives_empty_excerpt(tmp_path: Path) -> None:
    assert failure_excerpt(tmp_path / "none.log") == ""


def test_rotation_by_size_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    log = tmp_path / "e.log"
    assert rotate(log, 100, 2) is False  # missing file: nothing to do
    for round_no in range(4):
        with open(log, "ab") as fh:  # the engine keeps its O_APPEND descriptor across rotations
            fh.write(f"round {round_no} ".encode() * 20)
        assert rotate(log, 100, 2) is True
        assert log.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.log", "e.log.1", "e.log.2"]
    assert (tmp_path / "e.log.1").read_text().startswith("round 3")
    assert (tmp_path / "e.log.2").read_text().startswith("round 2")
    log.write_text("small")
    assert rotate(log, 100, 2) is False


def test_appending_writer_continues_at_the_start_after_rotation(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    with open(log, "ab") as writer:
        writer.write(b"x" * 200)
        writer.flush()
        assert rotate(log, 100, 1)
        writer.write(b"after\n")
        writer.flush()
    assert log.read_bytes() == b"after\n"  # no hole of 200 NUL bytes
