#!/usr/bin/env bash
# Create or refresh .venv: Python 3.11 (or $PYTHON), the exact pins of requirements-lock.txt and
# colorlab itself (editable). Re-running is cheap: nothing is reinstalled while the lock is unchanged.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PYTHON:-}
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
if [ ! -x .venv/bin/python ] || ! cmp -s requirements-lock.txt .venv/.installed-lock; then
  echo "setting up .venv with $($python --version 2>&1) (a few minutes the first time)..."
  rm -f .venv/.installed-lock
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  cp requirements-lock.txt .venv/.installed-lock
fi
