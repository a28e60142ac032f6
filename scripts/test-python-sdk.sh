#!/usr/bin/env bash
# The Python SDK's tests (clients/python/tests, pytest): the SDK's wheel is built
# from clients/python and installed into a fresh venv (never the source tree),
# then tested against the real server binary. scripts/test.sh runs this.
# Extra arguments go to pytest (for example `-k fork`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
export PULSYON_TEST_DATABASE_URL="${PULSYON_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
ensure_postgres_server "$PULSYON_TEST_DATABASE_URL"
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v openssl >/dev/null || apt_install openssl

cd "$root"
cargo build --quiet --bin pulsyon
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "building the pulsyon-sdk wheel and installing it into a fresh venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$work/dist" clients/python
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  -r tests/python/requirements-sdk.txt "$work"/dist/pulsyon_sdk-*.whl
say "Python SDK tests (pytest)"
PYTHONDONTWRITEBYTECODE=1 PULSYON_BIN="$root/target/debug/pulsyon" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  clients/python/tests "$@"
