#!/usr/bin/env bash
# Installs gpustack into its own Python environment and runs it as a service (systemd on Linux, launchd on
# macOS). Running it again upgrades in place; --uninstall removes it. See docs/quickstart.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install.sh [options]            install or upgrade (safe to run again)
       install.sh --uninstall [--purge] [--prefix DIR --bin-dir DIR --service-dir DIR]

  --role server|worker   run a server (with embedded worker) or only a worker (default: server)
  --server-url URL       the server a worker joins (worker role)
  --token TOKEN          the server's cluster token, from its data dir's `token` file (worker role)
  --port N               server port (default 8080)
  --worker-port N        worker proxy port (default 10150)
  --data-dir DIR         database, token, logs (default /var/lib/gpustack as root, else ~/.local/share/gpustack)
  --source SPEC          what to install: a checkout, a wheel or a pip requirement
                         (default: the checkout this script is in)
  --engine               also install the CPU llama.cpp engine (llama-cpp-python[server])
  --prefix DIR           the environment's home (default /opt/gpustack as root, else ~/.local/share/gpustack-env)
  --bin-dir DIR          where the `gpustack` command is linked (default /usr/local/bin as root, else ~/.local/bin)
  --service-dir DIR      write the service file into DIR and leave it stopped (default: the system's place)
  --no-service           install the command only
  --uninstall            stop and remove the service, the environment and the command; data is kept
  --purge                with --uninstall: also delete the data dir (the installed one, or --data-dir)
Uses uv when it is on PATH, else python3 -m venv and pip (PYTHON=... picks the interpreter).
EOF
}

die() { echo "error: $*" >&2; exit 2; }
say() { echo "gpustack-install: $*"; }

ROLE=server SERVER_URL="" TOKEN="" PORT="" WORKER_PORT="" DATA_DIR="" SOURCE="" ENGINE=""
PREFIX="" BIN_DIR="" SERVICE_DIR="" NO_SERVICE="" UNINSTALL="" PURGE=""
HERE=$(cd "$(dirname "$0")" && pwd)
OS=${GPUSTACK_INSTALL_OS:-$(uname -s)}  # the override lets tests write the other platform's service

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --role) ROLE=${2:?}; shift ;;
      --server-url) SERVER_URL=${2:?}; shift ;;
      --token) TOKEN=${2:?}; shift ;;
      --port) PORT=${2:?}; shift ;;
      --worker-port) WORKER_PORT=${2:?}; shift ;;
      --data-dir) DATA_DIR=${2:?}; shift ;;
      --source) SOURCE=${2:?}; shift ;;
      --engine) ENGINE=1 ;;
      --prefix) PREFIX=${2:?}; shift ;;
      --bin-dir) BIN_DIR=${2:?}; shift ;;
      --service-dir) SERVICE_DIR=${2:?}; shift ;;
      --no-service) NO_SERVICE=1 ;;
      --uninstall) UNINSTALL=1 ;;
      --purge) PURGE=1 ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option '$1' (see install.sh --help)" ;;
    esac
    shift
  done
}

set_defaults() {
  if [ "$(id -u)" = 0 ]; then
    PREFIX=${PREFIX:-/opt/gpustack} BIN_DIR=${BIN_DIR:-/usr/local/bin} DEFAULT_DATA=/var/lib/gpustack
  else
    PREFIX=${PREFIX:-$HOME/.local/share/gpustack-env} BIN_DIR=${BIN_DIR:-$HOME/.local/bin}
    DEFAULT_DATA=$HOME/.local/share/gpustack
  fi
  ENV_FILE=$PREFIX/gpustack.env
  case "$OS" in
    Darwin) SERVICE_NAME=ai.gpustack.plist ;;
    Linux) SERVICE_NAME=gpustack.service ;;
    *) SERVICE_NAME="" ;;
  esac
  MANAGE_SERVICE=""  # set when the service file goes to the system's place: then it is started/stopped
  if [ -z "$SERVICE_DIR" ] && [ -n "$SERVICE_NAME" ]; then
    MANAGE_SERVICE=1
    if [ "$OS" = Darwin ]; then
      if [ "$(id -u)" = 0 ]; then SERVICE_DIR=/Library/LaunchDaemons; else SERVICE_DIR=$HOME/Library/LaunchAgents; fi
    elif [ "$(id -u)" = 0 ]; then SERVICE_DIR=/etc/systemd/system
    else SERVICE_DIR=$HOME/.config/systemd/user
    fi
  fi
}

validate() {
  case "$ROLE" in
    server) [ -z "$SERVER_URL" ] || die "--server-url is for --role worker" ;;
    worker) [ -n "$SERVER_URL" ] && [ -n "$TOKEN" ] \
      || die "--role worker needs --server-url URL and --token TOKEN (the server's data dir holds the token)" ;;
    *) die "--role must be server or worker, not '$ROLE'" ;;
  esac
  for value in "$PORT" "$WORKER_PORT"; do
    case "$value" in ''|*[!0-9]*) [ -z "$value" ] || die "ports are numbers, not '$value'" ;; esac
  done
  if [ -z "$SOURCE" ]; then
    [ -f "$HERE/pyproject.toml" ] && grep -q '^name = "gpustack"' "$HERE/pyproject.toml" \
      || die "run install.sh from a gpustack checkout or give --source (a checkout, a wheel or a requirement)"
    SOURCE=$HERE
  fi
}

make_env() {
  local python=${PYTHON:-python3}
  if command -v uv >/dev/null 2>&1; then
    [ -x "$PREFIX/venv/bin/python" ] || uv venv --quiet --python "$python" "$PREFIX/venv"
    PIP=(uv pip install --quiet --python "$PREFIX/venv/bin/python")
  else
    command -v "$python" >/dev/null || die "$python not found: install Python 3.11 or newer (or uv)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "gpustack needs Python 3.11 or newer"
    [ -x "$PREFIX/venv/bin/python" ] || "$python" -m venv "$PREFIX/venv" \
      || die "cannot create a virtual environment (Debian/Ubuntu: apt install python3-venv)"
    PIP=("$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  fi
}

install_package() {
  local wheels=${WHEEL_CACHE:-$HOME/.cache/gpustack-wheels} extra=()
  [ -d "$wheels" ] && extra=(--find-links "$wheels")
  say "installing $SOURCE into $PREFIX/venv"
  "${PIP[@]}" ${extra[@]+"${extra[@]}"} --upgrade "$SOURCE"
  [ -z "$ENGINE" ] || "${PIP[@]}" ${extra[@]+"${extra[@]}"} "llama-cpp-python[server]==0.3.36"
  mkdir -p "$BIN_DIR"
  ln -sfn "$PREFIX/venv/bin/gpustack" "$BIN_DIR/gpustack"
  say "$("$BIN_DIR/gpustack" --version) is $BIN_DIR/gpustack"
}

write_env_file() {
  # GPUSTACK_* settings for the service (0600: it may hold the cluster token)
  local tmp=$ENV_FILE.tmp old_umask
  old_umask=$(umask)
  umask 077
  {
    echo "GPUSTACK_DATA_DIR=${DATA_DIR:-$DEFAULT_DATA}"
    [ -z "$PORT" ] || echo "GPUSTACK_PORT=$PORT"
    [ -z "$WORKER_PORT" ] || echo "GPUSTACK_WORKER_PORT=$WORKER_PORT"
    [ -z "$SERVER_URL" ] || echo "GPUSTACK_SERVER_URL=$SERVER_URL"
    [ -z "$TOKEN" ] || echo "GPUSTACK_TOKEN=$TOKEN"
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
  umask "$old_umask"
}

systemd_unit() {
  local wanted=multi-user.target
  [ "$(id -u)" = 0 ] || wanted=default.target
  cat <<EOF
[Unit]
Description=GPUStack $ROLE
After=network-online.target
Wants=network-online.target

[Service]
EnvironmentFile=$ENV_FILE
ExecStart=$PREFIX/venv/bin/gpustack start
Restart=always
RestartSec=5
KillMode=mixed
TimeoutStopSec=60
LimitNOFILE=65535

[Install]
WantedBy=$wanted
EOF
}

launchd_plist() {
  local data=${DATA_DIR:-$DEFAULT_DATA}
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">'
  echo '<plist version="1.0"><dict>'
  echo "  <key>Label</key><string>ai.gpustack</string>"
  echo "  <key>ProgramArguments</key><array><string>$PREFIX/venv/bin/gpustack</string><string>start</string></array>"
  echo "  <key>EnvironmentVariables</key><dict>"
  while IFS='=' read -r key value; do
    echo "    <key>$key</key><string>$value</string>"
  done <"$ENV_FILE"
  echo "  </dict>"
  echo "  <key>RunAtLoad</key><true/><key>KeepAlive</key><true/>"
  echo "  <key>StandardOutPath</key><string>$data/gpustack.log</string>"
  echo "  <key>StandardErrorPath</key><string>$data/gpustack.log</string>"
  echo '</dict></plist>'
}

systemctl_user() {
  if [ "$(id -u)" = 0 ]; then systemctl "$@"; else systemctl --user "$@"; fi
}

install_service() {
  [ -z "$NO_SERVICE" ] || return 0
  [ -n "$SERVICE_NAME" ] || { say "no service manager support on $OS: run '$BIN_DIR/gpustack start'"; return 0; }
  mkdir -p "$SERVICE_DIR" "${DATA_DIR:-$DEFAULT_DATA}"
  local file=$SERVICE_DIR/$SERVICE_NAME
  if [ "$OS" = Darwin ]; then
    launchd_plist >"$file.tmp"
    chmod 600 "$file.tmp"  # it holds the settings, the token among them
  else
    systemd_unit >"$file.tmp"
    chmod 644 "$file.tmp"
  fi
  mv "$file.tmp" "$file"
  say "wrote $file"
  if [ -z "$MANAGE_SERVICE" ]; then
    say "service not started (--service-dir given)"
  elif [ "$OS" = Darwin ]; then
    launchctl unload "$file" 2>/dev/null || true
    launchctl load -w "$file"
  elif [ -d /run/systemd/system ]; then
    systemctl_user daemon-reload
    systemctl_user enable gpustack.service >/dev/null
    systemctl_user restart gpustack.service
    say "service gpustack started: systemctl status gpustack; journalctl -u gpustack"
  else
    say "systemd is not running here: start it with '$BIN_DIR/gpustack start' (settings in $ENV_FILE)"
  fi
}

uninstall() {
  local data=$DATA_DIR
  [ -n "$data" ] || [ ! -f "$ENV_FILE" ] || data=$(sed -n 's/^GPUSTACK_DATA_DIR=//p' "$ENV_FILE")
  if [ -n "$SERVICE_NAME" ] && [ -f "$SERVICE_DIR/$SERVICE_NAME" ]; then
    if [ -n "$MANAGE_SERVICE" ] && [ "$OS" = Darwin ]; then
      launchctl unload -w "$SERVICE_DIR/$SERVICE_NAME" 2>/dev/null || true
    elif [ -n "$MANAGE_SERVICE" ] && [ -d /run/systemd/system ]; then
      systemctl_user disable --now gpustack.service 2>/dev/null || true
    fi
    rm -f "$SERVICE_DIR/$SERVICE_NAME"
    [ -z "$MANAGE_SERVICE" ] || [ "$OS" = Darwin ] || [ ! -d /run/systemd/system ] || systemctl_user daemon-reload
  fi
  if [ -L "$BIN_DIR/gpustack" ]; then rm -f "$BIN_DIR/gpustack"; fi
  rm -rf "$PREFIX/venv" "$ENV_FILE"
  rmdir "$PREFIX" 2>/dev/null || true
  if [ -n "$PURGE" ] && [ -n "$data" ]; then
    rm -rf "$data"
    say "removed gpustack and its data dir $data"
  else
    say "removed gpustack${data:+; its data stays in $data (--purge deletes it)}"
  fi
}

main() {
  parse_args "$@"
  set_defaults
  if [ -n "$UNINSTALL" ]; then
    uninstall
    return
  fi
  validate
  mkdir -p "$PREFIX"
  make_env
  install_package
  write_env_file
  install_service
}

main "$@"
