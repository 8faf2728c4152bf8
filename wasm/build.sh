#!/usr/bin/env bash
# Build the example analyzers into wasm/plugins/*.wasm (manifest packed in) and write SHA256SUMS.
#
# Needs, on a fresh Debian machine:
#   apt-get install clang lld wabt nodejs npm python3     (wat2wasm may be replaced by the
#   wasmtime Python package: pip install wasmtime)
# The AssemblyScript compiler comes from npm (pinned in examples/slowpatterns/package.json).
# The committed .wasm files are what the tests use; a different compiler version gives
# different bytes, so rebuild, run the tests, and commit the new files with their sums.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
OUT="$HERE/plugins"
TMP="$HERE/build"
PACK="python3 $HERE/tools/pack_manifest.py"
mkdir -p "$OUT" "$TMP"

echo "== hotspots (freestanding C, clang + wasm-ld)"
clang --target=wasm32 -O2 -ffreestanding -nostdlib -mbulk-memory -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--strip-all -I include \
  examples/hotspots/hotspots.c -o "$TMP/hotspots.core.wasm"
$PACK "$TMP/hotspots.core.wasm" examples/hotspots/manifest.json -o "$OUT/hotspots.wasm"

echo "== regressions (WebAssembly text)"
if command -v wat2wasm >/dev/null; then
  wat2wasm examples/regressions/regressions.wat -o "$TMP/regressions.core.wasm"
else
  python3 -c 'import sys, wasmtime; open(sys.argv[2], "wb").write(wasmtime.wat2wasm(open(sys.argv[1]).read()))' \
    examples/regressions/regressions.wat "$TMP/regressions.core.wasm"
fi
$PACK "$TMP/regressions.core.wasm" examples/regressions/manifest.json -o "$OUT/regressions.wasm"

echo "== slowpatterns (AssemblyScript)"
(
  cd examples/slowpatterns
  [ -x node_modules/.bin/asc ] || npm install --no-audit --no-fund --no-package-lock
  npm run --silent build
)
$PACK examples/slowpatterns/build/slowpatterns.core.wasm examples/slowpatterns/manifest.json \
  -o "$OUT/slowpatterns.wasm"

(cd "$OUT" && sha256sum hotspots.wasm regressions.wasm slowpatterns.wasm > SHA256SUMS)
cat "$OUT/SHA256SUMS"
