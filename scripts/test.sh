#!/usr/bin/env bash
# The test suite: installs or starts what the tests need when it is missing
# (PostgreSQL, Redis, grpcurl, buf, Node.js 20+, the OpenTelemetry Python
# exporters), then runs every test of the workspace, the Python SDK's tests
# and the dashboard's browser tests (Playwright driving Debian's Chromium).
# One failing suite or test binary does not hide the others: every suite
# runs (`cargo test --no-fail-fast`), a summary lists each one, and the exit
# status is non-zero if any failed.
# Extra arguments go to `cargo test` (for example a test name filter), and then
# the Python SDK's and the browser tests are left out (scripts/test-python-sdk.sh
# and scripts/test-web.sh run them alone).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

# What can fail is checked before the long build.
command -v cargo >/dev/null || { say "cargo not found: install a Rust toolchain (rustup.rs)"; exit 1; }
command -v cc >/dev/null || { say "no C compiler (cc): apt-get install build-essential"; exit 1; }
export PULSYON_TEST_DATABASE_URL="${PULSYON_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
ensure_postgres_server "$PULSYON_TEST_DATABASE_URL"
ensure_postgres_binaries
ensure_redis
ensure_grpcurl "$root"
ensure_node "$root"
ensure_buf "$root"
ensure_otel_venv "$root"
ensure_peers_venv "$root"
if [ $# -eq 0 ]; then
  ensure_chromium
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  command -v openssl >/dev/null || apt_install openssl
fi

# Databases left by interrupted runs.
psql "$PULSYON_TEST_DATABASE_URL" -qAtc \
  "select 'DROP DATABASE IF EXISTS ' || quote_ident(datname) || ' WITH (FORCE);' from pg_database where datname like 'pulsyon\_test\_%'" \
  | psql "$PULSYON_TEST_DATABASE_URL" -q >/dev/null

cd "$root"
log_dir="$root/target/test-logs"
mkdir -p "$log_dir"
failed=0
summary=()
# Runs one suite, its output also kept in target/test-logs/<name>.log.
suite() {
  local name="$1" start status
  shift
  start=$(date +%s)
  say "suite: $name"
  if "$@" 2>&1 | tee "$log_dir/$name.log"; then status=passed; else status=FAILED; failed=1; fi
  summary+=("$(printf '%-8s %-12s %5d s' "$status" "$name" $(( $(date +%s) - start )))")
}

suite rust cargo test --workspace --no-fail-fast "$@"
if [ $# -eq 0 ]; then
  suite python-sdk "$root/scripts/test-python-sdk.sh"
  suite browser "$root/scripts/test-web.sh"
fi

say "summary (also in target/test-logs/summary.txt)"
{
  # Each Rust test binary's result line, named by its binary.
  awk '/^ *Running / { name = ($2 == "unittests") ? $3 : $2 } /^ *Doc-tests / { name = "doc-tests " $2 }
       /^test result:/ { sub(/^test result: /, ""); printf "  %-44s %s\n", name, $0 }' "$log_dir/rust.log" || true
  printf '%s\n' "${summary[@]}"
} | tee "$log_dir/summary.txt"
if [ "$failed" -ne 0 ]; then say "some suites FAILED (logs in target/test-logs/)"; exit 1; fi
say "every suite passed"
