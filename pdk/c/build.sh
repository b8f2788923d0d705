#!/usr/bin/env bash
# Builds a Plaza sandbox module from C with the Zig toolchain from PyPI (pip install ziglang).
#
#   pdk/c/build.sh SOURCE.c [OUTPUT.wasm]        (OUTPUT defaults to SOURCE with .wasm)
#
# PYTHON picks the interpreter that has ziglang (default: the repo's .venv, else python3).
# Extra compiler flags can be passed in CFLAGS, the stack size in bytes in STACK_SIZE. See pdk/c/README.md for what each flag does.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi

src="${1:?usage: build.sh SOURCE.c [OUTPUT.wasm]}"
out="${2:-${src%.c}.wasm}"

# --target=wasm32-wasi      wasm32 with wasi-libc (malloc, string.h); WASI preview 1 imports
# -mexec-model=reactor      a library-style module: no main/_start; exports stay callable
# -Wl,-z,stack-size=N       the C stack (STACK_SIZE, default 1 MiB). Zig's own default is 16 MiB,
#                           which makes the initial memory 257 pages: over the sandbox's 10 MiB
#                           cap, so every call would end memory_limit before running
# -Wl,--strip-all           no names/debug sections: smaller, and the build is reproducible
# shellcheck disable=SC2086
"$PYTHON" -m ziglang cc --target=wasm32-wasi -O2 -mexec-model=reactor \
  -Wl,-z,stack-size="${STACK_SIZE:-1048576}" -Wl,--strip-all \
  -I "$here" ${CFLAGS:-} -o "$out" "$src"
