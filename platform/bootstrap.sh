#!/usr/bin/env bash
# Install the tools this repo needs on a fresh machine, then run the given command.
#   platform/bootstrap.sh nox -s up                       # the main job
#   platform/bootstrap.sh nox -s lint unit integration    # the tests
# Idempotent: each step is skipped when its tool is already there.
set -euo pipefail

UV_VERSION="0.13.9"
NOX_VERSION="2026.10.20"

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

# Prometheus and the Pushgateway are optional for the local backend (it skips them with a note when
# missing), but the tests expect them, so install them where we can (Debian/Ubuntu as root).
if ! command -v prometheus >/dev/null || ! command -v prometheus-pushgateway >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing prometheus and prometheus-pushgateway (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus prometheus-pushgateway >/dev/null
  else
    say "prometheus/prometheus-pushgateway not found and cannot apt-get install them here;" \
        "the local backend will run without them (install: sudo apt-get install prometheus prometheus-pushgateway)"
  fi
fi

# uv and nox, pinned; installed for this Python if missing or at another version.
PY="${PYTHON:-python3}"
if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ] \
   || ! command -v nox >/dev/null; then
  say "installing uv==$UV_VERSION nox==$NOX_VERSION"
  "$PY" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" "nox==$NOX_VERSION"
fi

# A Docker engine for the compose and kind backends: started when none answers (root on
# Debian/Ubuntu), otherwise the user's own; `platform/docker-engine.sh stop` stops one it started.
"$(dirname "$0")/docker-engine.sh" start

[ "$#" -gt 0 ] || { say "usage: platform/bootstrap.sh COMMAND [ARGS...]"; exit 2; }
cd "$(dirname "$0")/.."
exec "$@"
