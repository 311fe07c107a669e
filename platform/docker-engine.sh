#!/usr/bin/env bash
# Make a Docker engine answer on this machine, or stop the one this script started.
#   platform/docker-engine.sh start   # no-op when an engine already answers
#   platform/docker-engine.sh stop    # stops only an engine started by `start` (its pid file)
#   platform/docker-engine.sh status
# On Debian/Ubuntu as root with no engine: installs Debian's `docker.io` and runs `dockerd` in the
# background (no systemd on these machines) with its own log and pid file. Elsewhere it uses the
# engine the user has, and with none it says how to get one; it never fails the caller over it:
# only the compose and kind backends need an engine.
set -euo pipefail

STATE_DIR="${STACK_DOCKERD_STATE:-/run/airflow-on-k8s-dockerd}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="${STACK_DOCKERD_LOG:-/var/log/airflow-on-k8s-dockerd.log}"
SOCKET="/var/run/docker.sock"  # the default: the docker CLI, the SDK and Compose find it unaided
PING_BUDGET_SECONDS=60

say() { printf '\033[1m[docker-engine]\033[0m %s\n' "$*" >&2; }

answers() {
  if [ -n "${DOCKER_HOST:-}" ] && command -v docker >/dev/null; then
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
  else
    [ -S "$SOCKET" ] && curl -fsS --max-time 3 --unix-socket "$SOCKET" http://docker/_ping >/dev/null 2>&1
  fi
}

how_to_get_one() {
  say "no Docker engine answers and this script cannot start one here ($1)." \
      "The local backend needs none; for the compose and kind backends install one:" \
      "Debian/Ubuntu as root: apt-get install docker.io && dockerd &;" \
      "elsewhere Docker Engine or Docker Desktop (https://docs.docker.com/engine/install/)," \
      "or point DOCKER_HOST at a running engine."
}

start() {
  if answers; then
    say "a Docker engine answers: using it"
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    how_to_get_one "not root on Debian/Ubuntu"
    return 0
  fi
  if ! command -v dockerd >/dev/null || ! command -v curl >/dev/null \
     || ! command -v mmdebstrap >/dev/null || ! command -v docker-registry >/dev/null; then
    # mmdebstrap: the no-registry mode builds base images from this machine's Debian sources;
    # docker-registry: a local OCI registry on 127.0.0.1 (`stackctl images push`)
    say "installing docker.io, mmdebstrap and docker-registry (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local packages=(docker.io curl mmdebstrap docker-registry)
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }
  fi
  mkdir -p "$STATE_DIR"
  say "starting dockerd (log: $LOG_FILE)"
  # setsid: the engine outlives this shell (and a Ctrl-C in the terminal that ran it)
  setsid dockerd --host "unix://$SOCKET" --pidfile "$PID_FILE" >>"$LOG_FILE" 2>&1 < /dev/null &
  local waited=0
  until answers; do
    if [ "$waited" -ge "$PING_BUDGET_SECONDS" ]; then
      say "dockerd did not answer /_ping within ${PING_BUDGET_SECONDS}s; last lines of $LOG_FILE:"
      tail -n 20 "$LOG_FILE" >&2 || true
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "dockerd answers /_ping after ${waited}s (pid $(cat "$PID_FILE"))"
}

stop() {
  if [ ! -f "$PID_FILE" ]; then
    return 0  # not ours: an engine the user runs is left alone
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "dockerd still running after 30s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if answers; then echo "a Docker engine answers"; else echo "no Docker engine answers"; exit 1; fi ;;
  *) say "usage: platform/docker-engine.sh start|stop|status"; exit 2 ;;
esac
