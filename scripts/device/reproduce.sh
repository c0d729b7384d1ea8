#!/usr/bin/env bash
# The GPU reproduction in one resumable command, for a lent H100/H200 (see the device tool):
#   run(command="bash scripts/device/reproduce.sh", carry=[".devdata", ".whl"], timeout_s=570)
# First `colorlab bench train`, then `colorlab reproduce --profile full` on the packed data
# (scripts/device/pack.py). Finished runs are skipped and an interrupted one resumes from its
# checkpoint in runs/full (kept on a warm machine), so calling it again continues. Results come
# back through $OUT as results.tgz (unpack over results/ and commit) plus the log.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=${OUT:-/tmp/colorlab-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" COLORLAB_DATA="$PWD/.devdata" COLORLAB_CACHE=/tmp/colorlab-cache
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/device.txt"
timeout 540 python3 -m colorlab reproduce --profile full --bench --quiet --out results-gpu \
  --work-dir runs/full 2>&1 | tee "$out/log.txt"
status=${PIPESTATUS[0]}
[ -d results-gpu ] && tar czf "$out/results.tgz" results-gpu
exit "$status"
