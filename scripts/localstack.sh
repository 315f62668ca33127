#!/usr/bin/env bash
# Local CloudWatch-compatible server for integration tests: LocalStack in host
# mode (no docker), in its own venv, listening on loopback only.
#
#   scripts/localstack.sh install   # create/refresh the venv (idempotent, fast when done)
#   scripts/localstack.sh start     # install if needed, start (or reuse), print endpoint URL last
#   scripts/localstack.sh stop      # stop server and its children; no error if not running
#   scripts/localstack.sh status    # exit 0 if running and healthy
#
# Env: LOCALSTACK_PORT (4566), LOCALSTACK_VENV (<repo>/target/localstack-venv),
#      LOCALSTACK_PYTHON (a Python >= 3.13; else found via pyenv or PATH).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="$REPO/target"
VENV="${LOCALSTACK_VENV:-$TARGET/localstack-venv}"
PORT="${LOCALSTACK_PORT:-4566}"
ENDPOINT="http://127.0.0.1:$PORT"
# One set of files per port, so that several servers can run side by side (the outage test runs its own).
LOG="$TARGET/localstack-$PORT.log"
PIDFILE="$TARGET/localstack-$PORT.pid"
FSROOT="$TARGET/localstack-fs-$PORT"
# cbor2 6.x and pyOpenSSL 26.x break localstack-core 2026.3.0: keep them pinned.
PINS=('localstack-core[base-runtime]==2026.3.0' 'cbor2==5.9.0' 'pyopenssl==25.3.0')
MARKER="$VENV/.localstack-pins"
# Every package of the venv, pinned (pip freeze of a working install): new releases of LocalStack's
# dependencies (as cbor2 6 and pyOpenSSL 26 did) cannot break a fresh install.
CONSTRAINTS="$(dirname "${BASH_SOURCE[0]}")/localstack-constraints.txt"

die() { echo "localstack.sh: $*" >&2; exit 1; }
log() { echo "localstack.sh: $*" >&2; }

# Print the first Python >= 3.13 found (localstack-core 2026.3.0 needs it).
find_python() {
  local ok='import sys; sys.exit(sys.version_info < (3, 13))' c
  if [[ -n "${LOCALSTACK_PYTHON:-}" ]]; then
    "$LOCALSTACK_PYTHON" -c "$ok" 2>/dev/null || die "LOCALSTACK_PYTHON=$LOCALSTACK_PYTHON is not a Python >= 3.13"
    echo "$LOCALSTACK_PYTHON"; return
  fi
  local root; root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for c in "$root"/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.13*/bin/python3 \
           "$(command -v python3.13 || true)"; do
    [[ -n "$c" && -x "$c" ]] && "$c" -c "$ok" 2>/dev/null && { echo "$c"; return; }
  done
  die "no Python >= 3.13 found (tried pyenv versions 3.13*, python3.13 on PATH); set LOCALSTACK_PYTHON"
}

install() {
  # The marker records the pins and the constraints file, so a change to either reinstalls.
  local want="${PINS[*]} $(cksum <"$CONSTRAINTS")"
  if [[ -x "$VENV/bin/python" && -f "$MARKER" && "$(cat "$MARKER")" == "$want" ]]; then
    return 0
  fi
  local py; py="$(find_python)"
  log "installing LocalStack into $VENV with $py"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" "${PINS[@]}" >&2
  echo "$want" >"$MARKER"   # written last: a failed install is redone next time
}

# True if any non-zombie process is left in process group $1 (the server is
# its group leader; PID 1 here may not reap orphans, so ignore zombies).
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

# True if the health endpoint answers and lists cloudwatch (no curl needed).
healthy() {
  "$VENV/bin/python" - "$ENDPOINT/_localstack/health" <<'PY' 2>/dev/null
import sys, urllib.request
sys.exit(b'"cloudwatch"' not in urllib.request.urlopen(sys.argv[1], timeout=2).read())
PY
}

running_pid() {
  local pid
  [[ -f "$PIDFILE" ]] && pid="$(cat "$PIDFILE")" && [[ "$pid" =~ ^[0-9]+$ ]] && group_alive "$pid" && echo "$pid"
}

stop() {
  local pid i
  if pid="$(running_pid)"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do group_alive "$pid" || break; sleep 0.2; done
    if group_alive "$pid"; then
      log "pid $pid did not stop on SIGTERM in 10 s; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$PIDFILE"
  rm -rf "$FSROOT"
}

start() {
  install
  if running_pid >/dev/null; then
    if healthy; then log "reusing running server (pid $(cat "$PIDFILE"))"; echo "$ENDPOINT"; return 0; fi
    log "server from $PIDFILE is not healthy; restarting"
  fi
  stop
  # Anything answering on the port now is not ours.
  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
    die "port 127.0.0.1:$PORT is already in use by another process (set LOCALSTACK_PORT)"
  fi
  rm -rf "$FSROOT"; mkdir -p "$FSROOT"
  # Emptied here, not only by the server's redirection below, which happens in the background child: the wait
  # loop must never find the "Ready." of an earlier run's log.
  : >"$LOG"
  # setsid: own session + process group (pgid == pid), so it outlives this
  # script and stop can signal the whole group. No stdio tied to the caller.
  # (In a non-interactive shell the child is no group leader, so setsid does
  # not fork and $! is the server's pid.)
  # hypercorn because the default server binds 0.0.0.0; the rest keeps
  # LocalStack off the network (no DNS server, no cert download, no analytics).
  env SERVICES=cloudwatch EAGER_SERVICE_LOADING=1 \
      GATEWAY_LISTEN="127.0.0.1:$PORT" GATEWAY_SERVER=hypercorn \
      OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$FSROOT" DNS_ADDRESS=0 \
      SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
      setsid "$VENV/bin/python" -m localstack.runtime.main </dev/null >"$LOG" 2>&1 &
  local pid=$! i
  echo "$pid" >"$PIDFILE"
  for ((i = 0; i < 300; i++)); do           # 300 x 0.2 s = 60 s
    if grep -q '^Ready\.' "$LOG"; then
      # "Ready." only means *something* accepts on the port: hypercorn fails
      # to bind silently, so check that it is really LocalStack answering.
      if healthy; then echo "$ENDPOINT"; return 0; fi
      log "printed Ready. but $ENDPOINT/_localstack/health does not answer"; break
    fi
    # After a fatal start error LocalStack hangs instead of exiting.
    if grep -qE '^ERROR|gave up waiting for gateway' "$LOG" || ! group_alive "$pid"; then break; fi
    sleep 0.2
  done
  log "LocalStack failed to start (see $LOG); last lines:"
  tail -n 30 "$LOG" >&2 || true
  stop
  exit 1
}

mkdir -p "$TARGET"
case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) running_pid >/dev/null && healthy ;;
  *) die "usage: $0 install|start|stop|status" ;;
esac
