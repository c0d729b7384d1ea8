#!/usr/bin/env bash
# Open every page of the built book (_build/html, from scripts/build-book.sh) in headless Chromium
# at 1280 px and 400 px and fail on what a reader would see as broken: see tests/pages_in_browser.py.
# Chromium comes from Debian's packages (installed when missing and possible; the test skips, and
# says why, only where it cannot be installed); MathJax from the npm registry into _build/browser.
# COLORLAB_SHOTS=<folder> also saves a full-page PNG of every page at both widths.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
.venv/bin/python -m pytest tests/pages_in_browser.py -rs "$@"
