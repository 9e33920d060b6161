#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `start` makes one in a temp
# folder, listening on a free loopback port only, and prints its URL;
# `stop DIR` stops it and removes the folder.
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # sets PG_TEST_DIR and REALM_AUTH_TEST_PG_URL
#   scripts/pg-test-cluster.sh stop "$PG_TEST_DIR"
#
# PostgreSQL comes from Debian's packages (`apt-get install postgresql`; .ci/run
# installs it when missing). initdb refuses to run as root, so as root the
# cluster belongs to the unprivileged `postgres` user the package creates; as
# anyone else it is that user's own. Trust authentication: only this machine's
# loopback can reach it, and it lives as long as the test run.
set -euo pipefail

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  command -v pg_ctl >/dev/null && { dirname "$(command -v pg_ctl)"; return; }
  echo "pg-test-cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

case "${1:-}" in
start)
  bin="$(bindir)"
  dir="$(mktemp -d /tmp/realm-auth-pg.XXXXXX)"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  port="$(free_port)"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  # Durable settings stay on (the crash tests rely on them); the socket lives in the temp folder.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null ||
    { cat "$dir/server.log" >&2; exit 1; }
  echo "export PG_TEST_DIR='$dir' PG_TEST_BIN='$bin' REALM_AUTH_TEST_PG_URL='postgres://postgres@127.0.0.1:$port/postgres'"
  ;;
stop)
  dir="${2:?usage: pg-test-cluster.sh stop DIR}"
  bin="$(bindir)"
  [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg-test-cluster.sh start | stop DIR" >&2
  exit 2
  ;;
esac
