# Shared set-up of the benchmark scripts. Sourced after setting DB (a scratch
# database name); provides URL, DB_URL, BIN, KEY (an ingest key of a fresh
# tenant), $work, start_server/stop_server (a release server on ephemeral
# ports, its gRPC address in $GRPC) and json (a field of a JSON line). The
# scratch database and the server are removed on exit.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/lib.sh"
URL=${URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
DB_URL="${URL%/*}/$DB"
# The server talks to PostgreSQL over loopback: no TLS, as a local deployment would.
SERVER_DB_URL="$DB_URL?sslmode=disable"
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  psql "$URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$URL" -qc "DROP DATABASE IF EXISTS ${DB}_base WITH (FORCE)" >/dev/null 2>&1 || true
  [ -d "$work/baseline-src" ] && git -C "$root" worktree remove --force "$work/baseline-src" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ensure_postgres_server "$URL"

say "building release binaries"
(cd "$root" && cargo build --release --quiet --workspace)
BIN=$root/target/release

psql "$URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null 2>&1
"$BIN/pulsyon" migrate --database-url "$DB_URL" 2>/dev/null
KEY=$("$BIN/pulsyon" tenant create bench --database-url "$DB_URL" 2>/dev/null)

# SERVER_BIN and SERVER_DB_URL may be set to run another build against its own database.
start_server() {
  "${SERVER_BIN:-$BIN/pulsyon}" serve --database-url "$SERVER_DB_URL" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --addr-file "$work/addr" "$@" 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 200); do [ -s "$work/addr" ] && grep -q http= "$work/addr" && break; sleep 0.05; done
  GRPC=$(sed -n 's/^grpc=//p' "$work/addr")
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; rm -f "$work/addr"; }
json() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# build_baseline REV: that revision's release server as $work/pulsyon-baseline (a git
# worktree with its own target directory, target/baseline: sharing one would
# let a build script's output of one revision pass for the other's); this
# build's binaries are kept in $work/current first, and BIN points there.
# The baseline gets its own database, BASE_DB_URL, migrated by itself (it
# refuses migrations it does not know), with tenant `bench` (key BASE_KEY).
build_baseline() {
  say "building the baseline $1 (release)"
  mkdir -p "$work/current"
  cp "$BIN/pulsyon" "$BIN/pulsyon-loadgen" "$BIN/pulsyon-seed" "$work/current/"
  git -C "$root" worktree add --quiet --detach "$work/baseline-src" "$1"
  (cd "$work/baseline-src" && CARGO_TARGET_DIR="$root/target/baseline" cargo build --release --quiet -p pulsyon --bin pulsyon)
  cp "$root/target/baseline/release/pulsyon" "$work/pulsyon-baseline"
  git -C "$root" worktree remove --force "$work/baseline-src"
  BIN=$work/current
  BASE_DB_URL="${URL%/*}/${DB}_base"
  psql "$URL" -qc "DROP DATABASE IF EXISTS ${DB}_base WITH (FORCE)" -c "CREATE DATABASE ${DB}_base" >/dev/null 2>&1
  "$work/pulsyon-baseline" migrate --database-url "$BASE_DB_URL" 2>/dev/null
  BASE_KEY=$("$work/pulsyon-baseline" tenant create bench --database-url "$BASE_DB_URL" 2>/dev/null)
}
