#!/usr/bin/env bash
# The dashboard's chart library, uPlot, is pinned in package.json and
# embedded in the binary from src/web/assets/vendor/ (no files to deploy,
# no build step for `cargo build`). This copies it there from node_modules;
# with --check it fails when the committed copy differs from the pinned one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_buf "$PWD"
dest=src/web/assets/vendor
files=(dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE)
if [[ "${1:-}" == "--check" ]]; then
  for f in "${files[@]}"; do
    cmp -s "node_modules/uplot/$f" "$dest/uplot-$(basename "$f")" \
      || { echo "src/web/assets/vendor: uplot $f differs from package.json's uplot; run scripts/vendor-web.sh" >&2; exit 1; }
  done
  echo "vendored uPlot matches package.json"
  exit 0
fi
mkdir -p "$dest"
for f in "${files[@]}"; do
  cp "node_modules/uplot/$f" "$dest/uplot-$(basename "$f")"
done
echo "vendored uPlot $(node -p "require('./node_modules/uplot/package.json').version") into $dest"
