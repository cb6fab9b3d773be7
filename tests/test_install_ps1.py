"""install.ps1 (Windows): parsed by PowerShell when `pwsh` is on PATH; otherwise its structure is checked here
(balanced blocks, the same options as install.sh, every helper it calls defined). It is not executed."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "install.ps1"
OPTIONS = ["Role", "ServerUrl", "Token", "Port", "WorkerPort", "DataDir", "Source", "Engine", "Prefix",
           "NoService", "Uninstall", "Purge"]  # fmt: skip


def _code_only(text: str) -> str:
    """The script without comments and string contents (PowerShell quoting: '' in '...', ` escapes in "...")."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
        elif ch in "'\"":
            i += 1
            while i < len(text) and not (text[i] == ch and text[i - 1] != "`"):
                i += 1
            i += 1
            out.append(ch + ch)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def test_blocks_are_balanced() -> None:
    code = _code_only(SCRIPT.read_text())
    stack: list[str] = []
    pairs = {")": "(", "}": "{", "]": "["}
    for ch in code:
        if ch in "({[":
            stack.append(ch)
        elif ch in pairs:
            assert stack and stack.pop() == pairs[ch], f"unbalanced {ch!r}"
    assert not stack, f"unclosed {stack}"


def test_options_match_install_sh() -> None:
    text = SCRIPT.read_text()
    param_block = text[text.index("param(") : text.index("$ErrorActionPreference")]
    declared = re.findall(r"\$(\w+)", param_block)
    assert [d for d in declared if d[0].isupper() and d not in ("env",)] == OPTIONS
    shell = (SCRIPT.parent / "install.sh").read_text()
    for option in ("--role", "--server-url", "--token", "--port", "--worker-port", "--data-dir", "--source",
                   "--engine", "--prefix", "--no-service", "--uninstall", "--purge"):  # fmt: skip
        assert option in shell


CMDLETS = {
    "Write-Error", "Write-Host", "Split-Path", "Test-Path", "Join-Path", "Get-Command", "Select-Object", "Out-Host",
    "Out-Null", "Set-Content", "Start-Service", "Stop-Service", "Get-Service", "New-ScheduledTaskAction",
    "New-ScheduledTaskTrigger", "New-ScheduledTaskSettingsSet", "New-TimeSpan", "Register-ScheduledTask",
    "Start-ScheduledTask", "Get-ScheduledTask", "Stop-ScheduledTask", "Unregister-ScheduledTask", "Remove-Item",
    "New-Item", "ForEach-Object",
}  # fmt: skip


def test_every_helper_is_defined_and_used() -> None:
    code = _code_only(SCRIPT.read_text())
    defined = set(re.findall(r"^function ([\w-]+)", code, re.M))
    for name in defined:
        assert len(re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", code)) >= 2, f"{name} is never called"
    verb_noun = set(re.findall(r"(?<![\w$-])([A-Z][a-z]+-[A-Z][\w-]*)", code))
    assert verb_noun <= defined | CMDLETS, (
        f"called but neither defined nor a known cmdlet: {verb_noun - defined - CMDLETS}"
    )


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="PowerShell (pwsh) is not installed here")
def test_powershell_parses_it() -> None:
    command = (
        "$e = $null; [System.Management.Automation.Language.Parser]::ParseFile("
        f"'{SCRIPT}', [ref]$null, [ref]$e) | Out-Null; $e | ForEach-Object {{ $_.ToString() }}; exit $e.Count"
    )
    result = subprocess.run(["pwsh", "-NoProfile", "-Command", command], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
