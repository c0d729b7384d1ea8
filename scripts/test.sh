#!/usr/bin/env bash
# Set up .venv and run every test: unit tests, doctests of colorlab/ and the book's chapters
# under nbval in the ci profile. Extra arguments go to pytest (e.g. -k color).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
COLORLAB_PROFILE=ci .venv/bin/python -m pytest "$@"
