#!/usr/bin/env bash
# Generates the Python SDK's `pulsyon.v1` modules from proto/ with the pinned
# grpcio-tools (clients/python/requirements-codegen.txt, in tools/venv-codegen).
#   scripts/gen-python.sh           write them into clients/python/src/pulsyon/v1
#   scripts/gen-python.sh --check   fail if what is committed differs from a fresh run
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
ensure_venv "$root" venv-codegen "$root/clients/python/requirements-codegen.txt"

pkg="$root/clients/python/src/pulsyon/v1"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$root/tools/venv-codegen/bin/python" -m grpc_tools.protoc -I"$root/proto" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$root"/proto/pulsyon/v1/*.proto
gen="$out/pulsyon/v1"

if [ "${1:-}" = "--check" ]; then
  if ! diff -r -x __init__.py -x __pycache__ "$gen" "$pkg" >/dev/null; then
    diff -r -x __init__.py -x __pycache__ "$gen" "$pkg" | head -40 >&2 || true
    echo "clients/python/src/pulsyon/v1 is not what proto/ generates: run scripts/gen-python.sh and commit" >&2
    exit 1
  fi
  say "clients/python/src/pulsyon/v1 matches proto/"
  exit 0
fi
find "$pkg" -name '*_pb2*.py*' -delete
cp "$gen"/*_pb2*.py* "$pkg"/
say "generated $(ls "$gen" | wc -l) files into clients/python/src/pulsyon/v1"
