#!/bin/sh
# The stand-in postgres image's entrypoint: what the official image's docker-entrypoint.sh does
# for this stack. On an empty $PGDATA: initdb with $POSTGRES_USER and $POSTGRES_PASSWORD, start a
# socket-only server, source /docker-entrypoint-initdb.d/*.sh, stop it; then run the command.
# The initialisation happens in a side folder moved into place only once every script succeeded:
# an interrupted first start leaves no half-initialised cluster behind.
set -eu
if [ "${1:-}" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  final="$PGDATA"
  PGDATA="$final.initialising"
  export PGDATA
  rm -rf "$PGDATA"
  : "${POSTGRES_PASSWORD:?is required (the official image refuses to start without it too)}"
  POSTGRES_USER="${POSTGRES_USER:-postgres}"
  export POSTGRES_USER
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start >/dev/null
  for script in /docker-entrypoint-initdb.d/*.sh; do
    [ -f "$script" ] || continue
    echo "stand-in entrypoint: sourcing $script"
    # shellcheck disable=SC1090
    . "$script"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rmdir "$final" 2>/dev/null || true
  mv "$PGDATA" "$final"
  PGDATA="$final"
  echo "stand-in entrypoint: database initialised"
fi
if [ "${1:-}" = "postgres" ]; then
  shift
  exec postgres -c listen_addresses='*' -k /var/run/postgresql "$@"
fi
exec "$@"
