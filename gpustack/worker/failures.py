"""The lines of an engine's log that explain why it stopped: errors first, repeats folded, then the tail."""

import re
from pathlib import Path

from gpustack.worker.logs import read_tail

RUN_MARKER = "--- gpustack "  # the process runtime writes this line before each start
ERROR_RE = re.compile(
    r"error|fatal|out of memory|\boom\b|cudamalloc|exception|traceback|panic|killed|segmentation fault|"
    r"core dumped|no such file|address already in use|permission denied|not found|failed|cannot|unable to",
    re.IGNORECASE,
)
SCAN_LINES = 2000  # how far back the excerpt looks


def fold_repeats(lines: list[str]) -> list[str]:
    """Runs of the same line become one line with "(repeated N times)"."""
    out: list[str] = []
    count = 0
    for i, line in enumerate(lines):
        count += 1
        if i + 1 < len(lines) and lines[i + 1] == line:
            continue
        out.append(f"{line} (repeated {count} times)" if count > 1 else line)
        count = 0
    return out


def _pick_errors(lines: list[str], limit: int) -> list[str]:
    """Error-looking lines: the first ones (the cause) and the last ones (the outcome)."""
    errors = [line for line in lines if ERROR_RE.search(line)]
    if len(errors) <= limit:
        return errors
    head = limit // 2
    return [*errors[:head], "…", *errors[len(errors) - (limit - head) :]]


def failure_excerpt(path: Path, *, error_lines: int = 10, tail_lines: int = 10, max_chars: int = 3000) -> str:
    """What to show on an instance whose engine stopped: the error lines of its last run, then its last
    lines, repeats folded (a crash can print the same line hundreds of times)."""
    data, _ = read_tail(path, SCAN_LINES)
    lines = [line.rstrip() for line in data.decode("utf-8", errors="replace").splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith(RUN_MARKER)]
    run = fold_repeats([line for line in lines[starts[-1] + 1 if starts else 0 :] if line.strip()])
    tail = run[-tail_lines:]
    errors = [line for line in _pick_errors(run[: len(run) - len(tail)], error_lines)]
    text = "\n".join(tail)
    if errors:
        text = "\n".join(errors) + "\n…\n" + text
    return text[-max_chars:]
