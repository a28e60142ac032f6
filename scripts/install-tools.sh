#!/usr/bin/env bash
# The command-line tools the README's examples and the tests use, into the
# checkout: grpcurl 1.8.6 (tools/bin/grpcurl) and buf (node_modules/.bin/buf).
# Idempotent; scripts/serve.sh and scripts/test.sh call the same helpers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
ensure_grpcurl "$root"
ensure_buf "$root"
say "grpcurl: $root/tools/bin/grpcurl ($("$root/tools/bin/grpcurl" -version 2>&1))"
say "buf: $root/node_modules/.bin/buf ($("$root/node_modules/.bin/buf" --version 2>&1))"
