#!/usr/bin/env bash
# Refreshes the pictures of docs/dashboard.md: runs the dashboard's browser
# tests (scripts/test-web.sh) with their screenshots written into
# docs/dashboard/ instead of the run's own directory. This rewrites tracked
# files on purpose; the tests alone never do. Extra arguments go to Playwright.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
printf '==> %s\n' "rewriting the screenshots in docs/dashboard/" >&2
PULSYON_SCREENSHOTS_DIR="$root/docs/dashboard" exec "$root/scripts/test-web.sh" "$@"
