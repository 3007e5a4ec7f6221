# Shared pieces of the benchmark scripts (bench/compare, bench/dashboard/run,
# bench/peers/bugsink/run). Source it after setting ROOT to the repository.
#
# Everything stays on this machine and on loopback. The PostgreSQL cluster
# is the durable private `bench` cluster of scripts/pg, on the port in
# SNAG_PG_PORT when set (each engineer passes their own).

bench_log() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_build debug|release: the snag binary and the load generator. (A
# `--bin` filter applies to every `-p` package, so each package names its
# own binary; `-p snag --bin snag -p snag-loadgen` alone skips the loader.)
bench_build() {
  local profile="$1"
  if [ "$profile" = release ]; then
    cargo build --locked --release -p snag --bin snag -p snag-loadgen --bin snag-loadgen >&2
  else
    cargo build --locked -p snag --bin snag -p snag-loadgen --bin snag-loadgen >&2
  fi
  SNAG="$ROOT/target/$profile/snag"
  LOADGEN="$ROOT/target/$profile/snag-loadgen"
}

# Starts (or reuses) the bench cluster: sets BENCH_ADMIN_URL and
# BENCH_PG_PID; remembers whether we started it, so bench_pg_release stops
# only a cluster this script started.
BENCH_STARTED_PG=""
bench_pg_start() {
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    BENCH_ADMIN_URL="$BENCH_DATABASE_URL"
    BENCH_PG_PID=""
    return
  fi
  if ! "$ROOT/scripts/pg" status bench >/dev/null 2>&1; then BENCH_STARTED_PG=1; fi
  BENCH_ADMIN_URL="$("$ROOT/scripts/pg" start bench)"
  BENCH_PG_PID="$("$ROOT/scripts/pg" pid bench)"
}

bench_pg_release() {
  if [ -n "$BENCH_STARTED_PG" ]; then
    "$ROOT/scripts/pg" stop bench >/dev/null 2>&1 || true
    BENCH_STARTED_PG=""
  fi
}

bench_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# bench_db_url NAME: the URL of database NAME on the bench cluster.
bench_db_url() { echo "${BENCH_ADMIN_URL%/*}/$1"; }

# snag_env: picks a free loopback port and exports the configuration a
# benchmark `snag serve` (and `snag project create`, which prints the DSN
# with SNAG_BASE_URL) uses; sets SNAG_PORT and SNAG_URL.
snag_env() {
  SNAG_PORT="$(bench_free_port)"
  SNAG_URL="http://127.0.0.1:$SNAG_PORT"
  export SNAG_BIND="127.0.0.1:$SNAG_PORT" SNAG_BASE_URL="$SNAG_URL" SNAG_ALLOW_ROOT=1 \
    SNAG_SECRET_KEY="${SNAG_SECRET_KEY:-bench-secret-key-0123456789abcdef}" SNAG_LOG="${SNAG_LOG:-warn}"
}

# snag_start LOGFILE: `snag serve` against DATABASE_URL with the snag_env
# configuration, once it is ready; sets SNAG_PID and SNAG_STARTUP_MS.
SNAG_PID=""
snag_start() {
  local log="$1" t0 t1
  t0=$(date +%s%N)
  "$SNAG" serve >"$log" 2>&1 &
  SNAG_PID=$!
  until curl -fsS "$SNAG_URL/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$SNAG_PID" 2>/dev/null; then
      bench_log "snag serve died; see $log"
      SNAG_PID=""
      return 1
    fi
    sleep 0.01
  done
  t1=$(date +%s%N)
  SNAG_STARTUP_MS=$(((t1 - t0) / 1000000))
}

snag_stop() {
  if [ -n "$SNAG_PID" ]; then
    kill "$SNAG_PID" 2>/dev/null || true
    wait "$SNAG_PID" 2>/dev/null || true
    SNAG_PID=""
  fi
}

# The "<events> <issues>" of one Snag project, read-only, for --stored-cmd.
snag_stored_cmd() {
  local url="$1" project="$2"
  echo "psql -X -At '$url' -c \"SELECT (SELECT count(*) FROM event WHERE project_id = $project), (SELECT count(*) FROM issue WHERE project_id = $project)\" | tr '|' ' '"
}

# has_arg NAME ARGS...: whether --NAME (or --NAME=…) is among ARGS.
has_arg() {
  local name="$1" a
  shift
  for a in "$@"; do
    case "$a" in "--$name" | "--$name="*) return 0 ;; esac
  done
  return 1
}

# arg_value NAME ARGS...: the value of --NAME VALUE or --NAME=VALUE in ARGS
# (empty when absent).
arg_value() {
  local name="$1"
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      "--$name") echo "${2:-}"; return ;;
      "--$name="*) echo "${1#*=}"; return ;;
    esac
    shift
  done
}
