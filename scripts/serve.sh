#!/usr/bin/env bash
# Runs the server on the embedded default: installs the PostgreSQL server
# binaries and grpcurl when they are missing, builds the release binary (with
# cargo's progress), and starts `pulsyon serve` with a private cluster under
# ./.pulsyon (or $PULSYON_DATA_DIR). Extra arguments go to `pulsyon serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

# What can fail is checked before the long build.
command -v cargo >/dev/null || { say "cargo not found: install a Rust toolchain (rustup.rs)"; exit 1; }
command -v cc >/dev/null || { say "no C compiler (cc): apt-get install build-essential"; exit 1; }
if [ -z "${DATABASE_URL:-}" ]; then
  ensure_postgres_binaries
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    say "the private cluster runs as the system user postgres, which does not exist (apt-get install postgresql makes it)"
    exit 1
  fi
fi
ensure_grpcurl "$root"

cd "$root"
if [ -x target/release/pulsyon ]; then
  say "building the release binary"
else
  say "building the release binary (the first build takes several minutes)"
fi
cargo build --release -p pulsyon -p pulsyon-loadgen
say "grpcurl is in $root/tools/bin and the CLI is $root/target/release/pulsyon: in another terminal, export PATH=\"$root/tools/bin:$root/target/release:\$PATH\""
if [ -z "${DATABASE_URL:-}" ]; then
  say "the API key of tenant default is in ${PULSYON_DATA_DIR:-.pulsyon}/api-key after the first start"
else
  say "with DATABASE_URL no tenant is made: once serving, 'target/release/pulsyon tenant create NAME' prints the new tenant's first key (every scope)"
fi
exec "$root/target/release/pulsyon" serve "$@"
