#!/usr/bin/env bash
# The test suite: installs or starts what the tests need when it is missing
# (PostgreSQL, Redis, grpcurl, buf, the OpenTelemetry Python exporters), then
# runs every test of the workspace, the Python SDK's tests and the
# dashboard's browser tests (Playwright driving Debian's Chromium).
# Extra arguments go to `cargo test` (for example a test name filter), and then
# the Python SDK's and the browser tests are left out (scripts/test-python-sdk.sh
# and scripts/test-web.sh run them alone).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

export PULSYON_TEST_DATABASE_URL="${PULSYON_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
ensure_postgres_server "$PULSYON_TEST_DATABASE_URL"
ensure_postgres_binaries
ensure_redis
ensure_grpcurl "$root"
ensure_buf "$root"
ensure_otel_venv "$root"

# Databases left by interrupted runs.
psql "$PULSYON_TEST_DATABASE_URL" -qAtc \
  "select 'DROP DATABASE IF EXISTS ' || quote_ident(datname) || ' WITH (FORCE);' from pg_database where datname like 'pulsyon\_test\_%'" \
  | psql "$PULSYON_TEST_DATABASE_URL" -q >/dev/null

cd "$root"
cargo test --workspace "$@"
if [ $# -eq 0 ]; then
  "$root/scripts/test-python-sdk.sh"
  "$root/scripts/test-web.sh"
fi
