#!/usr/bin/env bash
# The dashboard's browser tests (tests/web): Playwright's runner (pinned in
# package.json) driving Debian's Chromium against the real server built
# here, with a database of its own on the test PostgreSQL, twice: over plain
# HTTP/1.1, then with the HTTP port on TLS (HTTP/2 by ALPN, a demo certificate). Screenshots of
# each page land in tests/web/.run/screenshots/ (scripts/refresh-dashboard-pictures.sh
# writes them into docs/dashboard/). Installs Chromium with apt, Node.js 20+
# and the npm tools, when they are missing; never downloads a browser.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

export PULSYON_TEST_DATABASE_URL="${PULSYON_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
ensure_postgres_server "$PULSYON_TEST_DATABASE_URL"
ensure_grpcurl "$root"
ensure_node "$root"
ensure_buf "$root"
ensure_chromium

cd "$root"
cargo build --quiet -p pulsyon -p pulsyon-loadgen --bin pulsyon --bin pulsyon-seed
export PULSYON_BIN="$root/target/debug/pulsyon"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
say "browser tests over plain HTTP/1.1"
npx --no-install playwright test -c tests/web/playwright.config.js "$@"
say "browser tests over TLS (HTTP/2 by ALPN)"
PULSYON_WEB_TLS=1 npx --no-install playwright test -c tests/web/playwright.config.js "$@"
