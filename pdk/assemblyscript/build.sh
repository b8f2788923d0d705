#!/usr/bin/env bash
# Builds a Plaza sandbox module from AssemblyScript with the pinned asc (package.json).
#
#   pdk/assemblyscript/build.sh [SOURCE.ts [OUTPUT.wasm]]
#
# With no arguments it rebuilds the committed example, build/order_tagger.wasm (npm run build does
# the same). OUTPUT defaults to build/<SOURCE name>.wasm. Install the toolchain first:
#   (cd pdk/assemblyscript && npm ci --no-audit --no-fund)
# Extra asc flags can be passed in ASCFLAGS. See pdk/assemblyscript/README.md for each flag.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
asc="$here/node_modules/.bin/asc"
if [[ ! -x "$asc" ]]; then
  echo "asc not found: run (cd pdk/assemblyscript && npm ci --no-audit --no-fund)" >&2
  exit 1
fi

src="${1:-assembly/order_tagger.ts}"
name="$(basename "$src" .ts)"
out="${2:-build/$name.wasm}"
# absolute paths, since asc runs from the package directory (where --use resolves assembly/plaza)
[[ "$src" = /* ]] || src="$PWD/$src"
[[ "$out" = /* ]] || out="$PWD/$out"
if [[ $# -eq 0 ]]; then src="$here/assembly/order_tagger.ts" out="$here/build/order_tagger.wasm"; fi
mkdir -p "$(dirname "$out")"

# -O3                          optimise for speed (optimizeLevel 3, shrinkLevel 0)
# --runtime stub               a bump allocator that never frees: no GC, nothing to initialise
#                              but one global, set by the module's start section at instantiation
# --use abort=assembly/plaza/abort
#                              route abort (assertions, bounds checks, throw) to the PDK's own
#                              trapping abort; the default is an env.abort import, which the
#                              sandbox refuses (import_unknown)
# memory is exported as "memory" by default; no --exportStart (Plaza never calls _start)
cd "$here"
# shellcheck disable=SC2086
"$asc" "$src" -o "$out" -O3 --runtime stub --use abort=assembly/plaza/abort ${ASCFLAGS:-}
