#!/usr/bin/env bash
# Command 2: install everything into .venv and run the whole test suite.
# Browser tests drive Chromium at $PLAZA_CHROMIUM (default /usr/bin/chromium, Debian's package);
# without it they are skipped with a clear message, unless PLAZA_REQUIRE_BROWSER=1 (CI), where
# its absence fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements-dev.txt
echo "Test run on: database=${DATABASE_URL:-sqlite (embedded)} broker=${CELERY_BROKER_URL:-none (embedded executor)}"
set +e
"$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treating that as a failure" >&2
  exit 1
fi
exit "$status"
