#!/usr/bin/env bash
# Set up .venv and build the book to _build/html/index.html (offline, CPU, a few minutes).
# Chapters execute during the build; a failing cell or any Sphinx warning fails it (-W).
# COLORLAB_PROFILE (default: default) and COLORLAB_DATA (default: ../shared/data if present)
# choose what the chapters compute on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
.venv/bin/python scripts/pairs.py --check
rm -rf _build/html _build/.doctrees
export COLORLAB_BOOK_BUILD=1  # chapters skip interactive widgets (colorlab.pages.live_kernel)
.venv/bin/jupyter-book build . -W --keep-going
echo "book: $(pwd)/_build/html/index.html"
