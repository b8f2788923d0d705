# Shared by run.sh and test.sh: create .venv with Python 3.11+ and install a requirements file
# only when it changed since the last install.
ensure_venv() {
  local reqs="$1" python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Plaza needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)." >&2
    exit 1
  fi
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  PY=.venv/bin/python
  local stamp=".venv/.installed-$(basename "$reqs")"
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    "$PY" -m pip install --disable-pip-version-check -q --upgrade pip
    "$PY" -m pip install --disable-pip-version-check -q -r "$reqs"
    echo "$digest" > "$stamp"
  fi
}
