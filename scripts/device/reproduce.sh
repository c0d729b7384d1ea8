#!/usr/bin/env bash
# The GPU reproduction in one resumable command, for a lent H100/H200 (see the device tool).
#
#   python scripts/device/pack.py --data ../shared/data          # once: .devdata/ and .whl/
#   run(command="bash scripts/device/reproduce.sh", carry=[".devdata", ".whl", ".devresults"],
#       timeout_s=590)
#   tar xzf <files_at>/results.tgz                               # here, in the repository root
#
# It runs `colorlab bench train` and then `colorlab reproduce --profile full` on the packed data
# (scripts/device/pack.py), writing into .devresults/ (git-ignored). Whatever finished comes back
# in results.tgz, even when the call is cut off: the benchmark and each finished dataset sit in
# .devresults/.results.partial/ and are kept by the next call (same code, profile and data), which
# then trains only what is missing, on a fresh machine too. Checkpoints of an interrupted run stay
# in runs/full on a machine that is still warm. Once .devresults/results/ exists, copy it to
# results/ and commit it (small files only).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=${OUT:-/tmp/colorlab-out}
budget=${COLORLAB_DEVICE_SECONDS:-540}       # then SIGINT: finished items are kept
profile=${COLORLAB_DEVICE_PROFILE:-full}     # ci: a dry run of this script on a CPU
mkdir -p "$out" .devresults
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" COLORLAB_DATA="$PWD/.devdata" COLORLAB_CACHE=/tmp/colorlab-cache
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no GPU"; } \
  | tee "$out/device.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision',
torchvision.__version__)" | tee -a "$out/device.txt"
timeout --signal=INT --kill-after=20 "$budget" python3 -m colorlab reproduce --profile "$profile" \
  --bench --quiet --out .devresults/results --work-dir "runs/$profile" 2>&1 | tee "$out/log.txt"
status=${PIPESTATUS[0]}
tar czf "$out/results.tgz" .devresults
ls -la "$out"
exit "$status"
