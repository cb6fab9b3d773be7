# Installs gpustack on Windows into its own Python environment and runs it as a Windows service (through
# NSSM when it is on PATH, else a scheduled task that starts at boot as SYSTEM and restarts on failure).
# Running it again upgrades in place; -Uninstall removes it. See docs/quickstart.md.
# Example: .\install.ps1 -Role worker -ServerUrl http://head:8080 -Token TOKEN
[CmdletBinding()]
param(
    [ValidateSet("server", "worker")] [string] $Role = "server",
    [string] $ServerUrl = "",
    [string] $Token = "",
    [ValidateRange(0, 65535)] [int] $Port = 0,
    [ValidateRange(0, 65535)] [int] $WorkerPort = 0,
    [string] $DataDir = "$env:ProgramData\gpustack\data",
    [string] $Source = "",
    [switch] $Engine,
    [string] $Prefix = "$env:ProgramData\gpustack",
    [switch] $NoService,
    [switch] $Uninstall,
    [switch] $Purge
)
$ErrorActionPreference = "Stop"
$ServiceName = "gpustack"

function Fail([string] $Message) {
    Write-Error "error: $Message" -ErrorAction Continue
    exit 2
}

function Say([string] $Message) { Write-Host "gpustack-install: $Message" }

function Test-Arguments {
    if ($Role -eq "worker" -and (-not $ServerUrl -or -not $Token)) {
        Fail "-Role worker needs -ServerUrl URL and -Token TOKEN (the server's data dir holds the token)"
    }
    if ($Role -eq "server" -and $ServerUrl) { Fail "-ServerUrl is for -Role worker" }
    if (-not $script:Source) {
        $checkout = Split-Path -Parent $PSCommandPath
        if (-not (Test-Path (Join-Path $checkout "pyproject.toml"))) {
            Fail "run install.ps1 from a gpustack checkout or give -Source (a checkout, a wheel or a requirement)"
        }
        $script:Source = $checkout
    }
}

function Find-Python {
    foreach ($candidate in @(@("py", "-3.11"), @("python"))) {
        $exe = $candidate[0]
        $rest = @($candidate | Select-Object -Skip 1)
        if (Get-Command $exe -ErrorAction SilentlyContinue) {
            & $exe @rest -c "import sys; sys.exit(sys.version_info < (3, 11))"
            if ($LASTEXITCODE -eq 0) { return , $candidate }
        }
    }
    Fail "Python 3.11 or newer is needed: install it from python.org (or winget install Python.Python.3.11)"
}

function Install-Package {
    $venv = Join-Path $Prefix "venv"
    $python = Join-Path $venv "Scripts\python.exe"
    if (-not (Test-Path $python)) {
        $base = Find-Python
        $rest = @($base | Select-Object -Skip 1)
        & $base[0] @rest -m venv $venv | Out-Host
        if ($LASTEXITCODE -ne 0) { Fail "cannot create a virtual environment in $venv" }
    }
    Say "installing $Source into $venv"
    & $python -m pip install --quiet --disable-pip-version-check --upgrade $Source | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail "pip could not install $Source" }
    if ($Engine) {
        & $python -m pip install --quiet "llama-cpp-python[server]==0.3.36" | Out-Host
        if ($LASTEXITCODE -ne 0) { Fail "pip could not install the CPU engine" }
    }
    $gpustack = Join-Path $venv "Scripts\gpustack.exe"
    Say "$(& $gpustack --version) is $gpustack"
    return $gpustack
}

function Get-Settings {
    $settings = [ordered]@{ "GPUSTACK_DATA_DIR" = $DataDir }
    if ($Port) { $settings["GPUSTACK_PORT"] = "$Port" }
    if ($WorkerPort) { $settings["GPUSTACK_WORKER_PORT"] = "$WorkerPort" }
    if ($ServerUrl) { $settings["GPUSTACK_SERVER_URL"] = $ServerUrl }
    if ($Token) { $settings["GPUSTACK_TOKEN"] = $Token }
    return $settings
}

function Write-Launcher([string] $Gpustack, $Settings) {
    # The service runs this script: the settings (the token among them) live only here, readable by admins.
    $launcher = Join-Path $Prefix "gpustack-service.cmd"
    $lines = @("@echo off")
    foreach ($key in $Settings.Keys) { $lines += "set `"$key=$($Settings[$key])`"" }
    $lines += "`"$Gpustack`" start >> `"$DataDir\gpustack.log`" 2>&1"
    Set-Content -Path $launcher -Value $lines -Encoding ASCII
    icacls $launcher /inheritance:r /grant:r "Administrators:F" "SYSTEM:F" | Out-Null
    return $launcher
}

function Install-Service([string] $Launcher) {
    Remove-Service-Quietly
    if (Get-Command nssm -ErrorAction SilentlyContinue) {
        nssm install $ServiceName "$env:ComSpec" "/c `"$Launcher`"" | Out-Null
        nssm set $ServiceName Start SERVICE_AUTO_START | Out-Null
        nssm set $ServiceName AppExit Default Restart | Out-Null
        Start-Service $ServiceName
        Say "service '$ServiceName' started (NSSM): Get-Service $ServiceName"
    }
    else {
        $action = New-ScheduledTaskAction -Execute "$env:ComSpec" -Argument "/c `"$Launcher`""
        $trigger = New-ScheduledTaskTrigger -AtStartup
        $settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
            -ExecutionTimeLimit ([TimeSpan]::Zero) -StartWhenAvailable
        Register-ScheduledTask -TaskName $ServiceName -Action $action -Trigger $trigger -Settings $settings `
            -User "SYSTEM" -RunLevel Highest -Force | Out-Null
        Start-ScheduledTask -TaskName $ServiceName
        Say "scheduled task '$ServiceName' started at boot as SYSTEM (install NSSM for a Windows service)"
    }
}

function Remove-Service-Quietly {
    if (Get-Service $ServiceName -ErrorAction SilentlyContinue) {
        Stop-Service $ServiceName -ErrorAction SilentlyContinue
        if (Get-Command nssm -ErrorAction SilentlyContinue) { nssm remove $ServiceName confirm | Out-Null }
        else { sc.exe delete $ServiceName | Out-Null }
    }
    if (Get-ScheduledTask -TaskName $ServiceName -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $ServiceName -ErrorAction SilentlyContinue
        Unregister-ScheduledTask -TaskName $ServiceName -Confirm:$false
    }
}

function Uninstall-Gpustack {
    Remove-Service-Quietly
    Remove-Item -Recurse -Force -ErrorAction SilentlyContinue (Join-Path $Prefix "venv"), (Join-Path $Prefix "gpustack-service.cmd")
    if ($Purge) {
        Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $DataDir
        Say "removed gpustack and its data dir $DataDir"
    }
    else { Say "removed gpustack; its data stays in $DataDir (-Purge deletes it)" }
}

if ($Uninstall) {
    Uninstall-Gpustack
    exit 0
}
Test-Arguments
New-Item -ItemType Directory -Force -Path $Prefix, $DataDir | Out-Null
$gpustack = Install-Package
$launcher = Write-Launcher $gpustack (Get-Settings)
if ($NoService) { Say "no service: run $launcher (or $gpustack start)" }
else { Install-Service $launcher }
