#!/usr/bin/env bash
# Runs the server on the embedded default: installs the PostgreSQL server
# binaries when they are missing, builds the release binary, and starts
# `pulsyon serve` with a private cluster under ./.pulsyon (or $PULSYON_DATA_DIR).
# Extra arguments go to `pulsyon serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

[ -n "${DATABASE_URL:-}" ] || ensure_postgres_binaries
cd "$root"
cargo build --release --quiet
exec "$root/target/release/pulsyon" serve "$@"
