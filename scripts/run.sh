#!/usr/bin/env bash
# Command 1: install into .venv, migrate, seed demo data and start Plaza on the embedded
# defaults (SQLite under var/, in-process tasks, no broker). Needs only Python 3.11+.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements.txt
"$PY" manage.py migrate --noinput
"$PY" manage.py seed_demo
addr="${PLAZA_ADDR:-127.0.0.1:8000}"
echo "Starting Plaza at http://${addr}/ (Ctrl-C stops it)"
exec "$PY" manage.py runserver "$addr"
