# Sourced (from the repository root) by test.sh and build-book.sh: set up .venv, and point
# COLORLAB_DATA at ../shared/data when that folder exists and COLORLAB_DATA is not set.
bash scripts/setup.sh
if [ -z "${COLORLAB_DATA:-}" ] && [ -d ../shared/data ]; then
  COLORLAB_DATA="$(cd ../shared/data && pwd)"; export COLORLAB_DATA
fi
