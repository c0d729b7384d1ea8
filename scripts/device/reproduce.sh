#!/usr/bin/env bash
# The GPU reproduction in one resumable command, for a lent H100/H200 (see the device tool).
#
#   .venv/bin/python scripts/device/pack.py --data ../shared/data   # once: .devdata/, .whl/
#   mkdir -p .devpack && tar czf .devpack/data.tgz .devdata && mv .whl .devpack/whl
#   git rev-parse HEAD > .devpack/commit     # after committing; the same for every call of one
#                                            # reproduction (results/ names one commit)
#   run(command="bash scripts/device/reproduce.sh", carry=[".devpack"], timeout_s=600)
#   .venv/bin/python scripts/device/land.py <files_at of call 1> [<files_at of call 2> ...]
# land.py unpacks what came back into .devresults/ here, prints each call's wall time and the
# throughput table with its ratios (the note's), and, once the reproduction has finished,
# replaces results/ with it and its device records (then build the book, commit results/ and
# move .devresults away: a later session must start afresh, not carry a finished state).
# On a machine still warm from the last call, carry only .devpack: its .devresults/ and runs/
# stay there (a path named in carry replaces the device's copy). On a fresh machine, run land.py
# first, then carry [".devpack", ".devresults"].
#
# 1. Starts NVIDIA's Multi-Process Service when the machine has it (the runs' kernels then run at
#    the same time instead of taking turns), and stops it again if a CUDA program cannot start
#    under it.
# 2. `colorlab bench train` at 88x88 and 176x176, batch 64: one process (the path the recorded
#    single-seed run trained with), then $COLORLAB_DEVICE_PROCESSES (default 9; 4 at 176x176) at
#    once (how `colorlab reproduce` trains now; $COLORLAB_DEVICE_PROCESSES_176 at 176x176).
#    $COLORLAB_DEVICE_BENCH picks the paths measured, side by side in the same call: "eager"
#    (default), "compiled" (torch.compile, which fuses the elementwise kernels between the
#    convolutions; files *-compiled.json), "sync" (eager, the nearest-bin search's exactness flag
#    read back at every step as colorlab did before it stayed on the device: *-sync.json),
#    "graphs" (eager, the step recorded once as a CUDA graph and replayed: *-graphs.json),
#    "compiled-graphs" (both: *-compiled-graphs.json), a list such as "sync eager graphs", or
#    "none"; $COLORLAB_DEVICE_BENCH_AFTER (same values, in rounds separated by ";", each round
#    at every size before the next) measures after the reproduction, in what is left of the call.
#    $COLORLAB_DEVICE_SIZES picks the sizes (default "88 176", ci: 16),
#    $COLORLAB_DEVICE_BENCH_PROCESSES the process counts (default "1 $COLORLAB_DEVICE_PROCESSES").
#    A measurement already in .devresults/bench/ is kept; $OUT/bench.tgz holds all taken so far,
#    as soon as each is taken.
# 3. Unless COLORLAB_DEVICE_REPRODUCE=0: `colorlab reproduce --profile full` (18 runs: 3 losses
#    x 3 seeds x 2 data sets) on the packed data (scripts/device/pack.py) into .devresults/
#    (git-ignored), with --compile when COLORLAB_DEVICE_COMPILE=1, and with --cuda-graphs
#    (colorlab.step_graph) when COLORLAB_DEVICE_GRAPHS=1, or, with "auto" (the default), when the
#    benchmark files in .devresults/bench (this call's or kept from an earlier one) show the graph
#    recorded and faster at 88x88 with as many processes as the reproduction runs (else one).
#    Either way graphs are used only if scripts/device/check_graphs.py, a small model trained
#    both ways on this GPU first (~20 s, inside the call's limit), finds the graph recorded and
#    the training alike; its verdict is kept in .devresults/graphs-check.json for later calls on
#    the same GPU, torch and code (scripts/device/kept.py). A reproduction that an earlier call
#    finished with this code and profile is not run again (kept.py). Stopped with SIGINT before
#    the call's limit. Whatever finished comes
#    back in results.tgz, even when the call is cut off: the benchmark and each finished dataset
#    sit in .devresults/ and are kept by the next call (same code, profile and data; whether
#    steps are replayed from graphs may differ), which then trains only what is missing; on a
#    machine that is still warm, finished and interrupted runs in runs/full are kept too. Once
#    .devresults/results/ exists, scripts/device/land.py puts it in results/ (small files only).
#
# A session's device time (900 s, a machine start ~60-70 s of it; a machine stays warm ~30 s
# after a call) fits two calls if the second follows at once, on the kind the issue names. Both
# run the same command; only the second's limit differs:
#   export COLORLAB_DEVICE_BENCH=none COLORLAB_DEVICE_GRAPHS=1 \
#     COLORLAB_DEVICE_BENCH_AFTER="eager graphs; compiled-graphs; sync compiled"
#   1. bash scripts/device/reproduce.sh
#      (the 18 runs, <= 575 s, each step replayed from a CUDA graph if the check passes: the
#      library leaves graphs off by default until a device has measured them; a step that cannot
#      be recorded trains eagerly, with a warning in the log; the benchmark in any time left)
#   2. COLORLAB_DEVICE_SECONDS=$S bash scripts/device/reproduce.sh, S = 240 or, if less, the
#      `status` tool's budget_left_s minus 45 (the tool stops a call when the session's device
#      time ends, and results.tgz is written last; bench.tgz is there after each measurement)
#      (finishes the reproduction first if call 1 was cut off, with the graph check's verdict kept
#      from call 1; a finished one, .devresults/results, is not run again. Then the benchmark:
#      round 1 is today's eager step against the graph at 88 and 176, one process and several,
#      the comparison the issue asks for; round 2 adds compiled graphs, round 3 the flag read
#      every step and compiled alone. Each ratio changes one thing; what is measured is kept,
#      and a later call measures the rest)
# Each call brings back at most 6 files ($OUT holds 8): device.txt, bench.txt, bench.tgz (the
# measurements so far), gpu.csv, log.txt and results.tgz (all of .devresults).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
start=$SECONDS
out=${OUT:-/tmp/colorlab-out}
limit=${COLORLAB_DEVICE_SECONDS:-575}        # the whole script; then SIGINT: finished items stay
profile=${COLORLAB_DEVICE_PROFILE:-full}     # ci: a dry run of this script on a CPU
processes=${COLORLAB_DEVICE_PROCESSES:-9}
processes_176=${COLORLAB_DEVICE_PROCESSES_176:-4}  # at 176x176 (at most $processes)
paths=${COLORLAB_DEVICE_BENCH:-eager}  # eager, compiled, sync, graphs, compiled-graphs, or none
run_reproduce=${COLORLAB_DEVICE_REPRODUCE:-1}
compile=${COLORLAB_DEVICE_COMPILE:-0}      # 1: the reproduction's runs use torch.compile
graphs=${COLORLAB_DEVICE_GRAPHS:-auto}     # 1/0: the runs' steps as CUDA graphs; auto: see below
case "$graphs" in
  0|1|auto) ;;
  *) echo "COLORLAB_DEVICE_GRAPHS must be 0, 1 or auto, got '$graphs'"; exit 2 ;;
esac
bench_processes=${COLORLAB_DEVICE_BENCH_PROCESSES:-1 $processes}  # 176x176: $processes_176
# the benchmark's image sizes, batch and steps per window (ci: a dry run on a CPU)
if [ "$profile" = full ]; then sizes="88 176"; batch=64; steps=20
else sizes=16; batch=4; steps=2; fi
sizes=${COLORLAB_DEVICE_SIZES:-$sizes}
# the benchmark's paths, now rather than after the reproduction
after=${COLORLAB_DEVICE_BENCH_AFTER:-none}
IFS=';' read -ra rounds <<< "${after//$'\n'/;}"
for path in $paths ${rounds[*]-}; do
  case "$path" in
    eager|compiled|sync|graphs|compiled-graphs|none) ;;
    *) echo "COLORLAB_DEVICE_BENCH(_AFTER): unknown path '$path' (eager, compiled, sync, graphs," \
            "compiled-graphs, none)"
       exit 2 ;;
  esac
done
mkdir -p "$out" .devresults/bench
# a carry counts whole disk blocks: many small images travel as one tar (.devpack/data.tgz)
[ -d .devdata ] || { [ -f .devpack/data.tgz ] && tar xzf .devpack/data.tgz; }
for wheels in .whl .devpack/whl; do
  if compgen -G "$wheels/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$wheels"/*.whl || exit 1
  fi
done
export PYTHONPATH="/tmp/site:$PWD" COLORLAB_DATA="$PWD/.devdata" COLORLAB_CACHE=/tmp/colorlab-cache
export PYTHONUNBUFFERED=1
# the device's copy of .git can be stale: the commit is written by whoever packs (git rev-parse HEAD)
[ -s .devpack/commit ] && export COLORLAB_GIT_COMMIT="$(cat .devpack/commit)"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no GPU"; } \
  | tee "$out/device.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision',
torchvision.__version__, 'cpus', __import__('os').cpu_count())" | tee -a "$out/device.txt"
echo "call started $(date -u +%FT%TZ)" | tee -a "$out/device.txt"

# 1. MPS, where there is one and it works
mps=$(PATH="$PATH:/usr/local/nvidia/bin:/usr/bin" command -v nvidia-cuda-mps-control || true)
mps_on=
if [ -n "$mps" ] && [ "$profile" = full ]; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps CUDA_MPS_LOG_DIRECTORY=/tmp/nvidia-mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  "$mps" -d && sleep 1
  if timeout 60 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()"; then
    mps_on=1; echo "MPS: on ($mps)" | tee -a "$out/device.txt"
  else
    echo quit | "$mps"; sleep 1; rm -rf "$CUDA_MPS_PIPE_DIRECTORY"
    echo "MPS: failed to serve a CUDA program, stopped" | tee -a "$out/device.txt"
  fi
else
  echo "MPS: not on this machine" | tee -a "$out/device.txt"
fi

# 2. the benchmark: one process against several, at both sizes; each measurement is bounded by
#    what is left of the call ($limit)
bench() {  # $1: the paths to measure (see $paths above), size by size
  for size in $sizes; do  # the first size's comparison is whole before the next size starts
    for path in $1; do
      case "$path" in
        none) continue ;;
        eager) suffix=; flags=(--no-compile); wait_s=120 ;;
        compiled) suffix=-compiled; flags=(); wait_s=300 ;;   # compiling takes a minute or two
        sync) suffix=-sync; flags=(--no-compile --sync-search); wait_s=120 ;;
        graphs) suffix=-graphs; flags=(--no-compile --cuda-graphs); wait_s=120 ;;
        compiled-graphs) suffix=-compiled-graphs; flags=(--cuda-graphs); wait_s=300 ;;
      esac
      for p in $bench_processes; do
        [ "$size" = 176 ] && [ "$p" != 1 ] && \
          p=$(( processes < processes_176 ? processes : processes_176 ))
        f=.devresults/bench/train-$size-p$p$suffix.json
        [ -s "$f" ] && { echo "kept $f"; continue; }
        left=$(( limit - (SECONDS - start) - 15 ))
        (( left < 30 )) && { echo "no time left for $f"; return 0; }
        extra=(); [ "$profile" = full ] || extra=(--width 0.0625 --device cpu)
        timeout "$(( wait_s < left ? wait_s : left ))" python3 -m colorlab bench train \
          --size "$size" --batch "$batch" --steps "$steps" --repeats 5 "${flags[@]}" \
          --processes "$p" --json "$f" "${extra[@]}"
        # back even if the call is cut off before the tar below; one file, however many were
        # measured ($OUT brings back at most 8 files)
        [ -s "$f" ] && tar czf "$out/bench.tgz.part" .devresults/bench \
          && mv -f "$out/bench.tgz.part" "$out/bench.tgz"
      done
    done
  done
}
bench "$paths" 2>&1 | tee "$out/bench.txt"

# a reproduction an earlier call finished with this code and profile is not run again (results/
# is written only once every run is done: nothing is left to train)
if [ "$run_reproduce" != 0 ]; then
  python3 scripts/device/kept.py results "$profile" | tee -a "$out/device.txt"
  [ "${PIPESTATUS[0]}" = 0 ] && run_reproduce=0
fi

# the reproduction's step: recorded as a CUDA graph when asked (1), or, with "auto", when the
# benchmark files in .devresults/bench (this call's, or kept from an earlier one) show the graph
# recorded and faster at 88x88, the reproduction's size, with as many processes as it trains at
# once (else with one)
if [ "$graphs" = auto ] && [ "$run_reproduce" != 0 ]; then
  graphs=$(COLORLAB_P="$processes" python3 - <<'PY'
import json, os, pathlib
def record(name):
    p = pathlib.Path(".devresults/bench") / name
    return json.loads(p.read_text()) if p.is_file() and p.stat().st_size else None
for p in (os.environ["COLORLAB_P"], "1"):
    eager, graphed = record(f"train-88-p{p}.json"), record(f"train-88-p{p}-graphs.json")
    if eager and graphed:
        faster = graphed.get("cuda_graph") and graphed["images_per_s"] > eager["images_per_s"]
        print(int(bool(faster)), f"(the benchmark at 88x88 with {p} process(es): "
              f"{graphed['images_per_s']:.0f} images/s with the graph, "
              f"{eager['images_per_s']:.0f} without)")
        break
else:
    print(0, "(no benchmark of both steps at 88x88)")
PY
) || graphs="0 (the decision failed)"
  echo "CUDA graphs for the reproduction, auto: $graphs" | tee -a "$out/device.txt"
  graphs=${graphs%% *}
fi

# 3. the reproduction, stopped with SIGINT before the call's limit
workers=(); [ "$profile" = full ] && workers=(--workers "$processes")
[ "$compile" = 1 ] && workers+=(--compile)
if [ "$graphs" = 1 ] && [ "$run_reproduce" != 0 ]; then
  # the verdict of an earlier call's check on this GPU, torch and code (scripts/device/kept.py)
  python3 scripts/device/kept.py graphs | tee -a "$out/device.txt"
  check=${PIPESTATUS[0]}
  if [ "$check" = 2 ]; then
    # none: a small model trained both ways on this GPU first, graphs only if recorded and alike
    # (it takes part of the call's time, so it comes before the reproduction's budget)
    left=$(( limit - (SECONDS - start) - 60 ))
    timeout "$(( left < 180 ? (left > 10 ? left : 10) : 180 ))" \
      python3 scripts/device/check_graphs.py 2>&1 | tee .devresults/graphs-check.log \
      | tee -a "$out/device.txt"
    check=${PIPESTATUS[0]}
    # kept for the next call, if the check printed one (cut off or crashed, it decides nothing)
    python3 scripts/device/kept.py save-graphs .devresults/graphs-check.log \
      | tee -a "$out/device.txt"
  fi
  [ "$check" = 0 ] || { graphs=0; echo "CUDA graphs: off (the check above)" \
    | tee -a "$out/device.txt"; }
fi
[ "$graphs" = 1 ] && workers+=(--cuda-graphs)
budget=$(( limit - (SECONDS - start) - 25 ))
echo "reproduce: $budget s left in this call (options: ${workers[*]})"
status=0
stamp() { while IFS= read -r line; do printf '[%4d s] %s\n' "$(( SECONDS - start ))" "$line"; done; }
if [ "$run_reproduce" != 0 ]; then
  reproduce_start=$SECONDS
  # what the GPU does meanwhile (every 10 s), and, 40 s before the stop, every process's stack
  # (colorlab's CLI and its workers print it on SIGUSR1): where the time went, if it runs out
  sampler=
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,memory.used \
      --format=csv -l 10 > "$out/gpu.csv" 2>&1 & sampler=$!
  fi
  # (its sleep holds no pipe and ends with it: a sleep left holding the call's output open would
  # keep the call from returning until the sleep ends)
  ( trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    sleep $(( budget > 60 ? budget - 40 : 20 )) </dev/null >/dev/null 2>&1 & nap=$!
    wait "$nap" && echo "stacks at $(( SECONDS - start )) s:" \
      && pkill -USR1 -f "^python3 -m colorlab reproduce" && pkill -USR1 -f spawn_main ) & watchdog=$!
  # (the patterns leave out `timeout`, whose command line also names colorlab reproduce and which
  # SIGUSR1 would end, taking the SIGINT at the limit with it)
  timeout --signal=INT --kill-after=15 "$budget" python3 -m colorlab reproduce --profile "$profile" \
    --quiet --out .devresults/results --work-dir "runs/$profile" "${workers[@]}" 2>&1 \
    | stamp | tee "$out/log.txt"
  status=${PIPESTATUS[0]}
  kill "$watchdog" $sampler 2>/dev/null
  echo "reproduce: $(( SECONDS - reproduce_start )) s of wall time" | tee -a "$out/log.txt"
fi
# 4. $COLORLAB_DEVICE_BENCH_AFTER: more measurements in what is left of the call
#    (rounds separated by ";": each round measures its paths at every size before the next round)
for round in ${rounds[@]+"${rounds[@]}"}; do
  bench "$round" 2>&1 | tee -a "$out/bench.txt"
done
[ -n "$mps_on" ] && echo quit | "$mps"
# (scripts/device/land.py reads these two lines: a log without them is of a call cut off)
echo "wall seconds of this call: $(( SECONDS - start ))" | tee -a "$out/log.txt"
echo "exit status of this call: $status" | tee -a "$out/log.txt"
printf '{"date": "%s", "wall_seconds": %d, "reproduce_seconds_allowed": %d, "status": %d}\n' \
  "$(date -u +%FT%TZ)" "$(( SECONDS - start ))" "$budget" "$status" >> .devresults/calls.jsonl
# whole or not at all: a call cut off while it is written brings back no results.tgz
tar czf "$out/results.tgz.part" .devresults && mv -f "$out/results.tgz.part" "$out/results.tgz"
# the device tool brings back files of at most 16 MiB (tests/recorded_checks.py keeps results/
# under 15 MiB)
(( $(stat -c %s "$out/results.tgz" 2>/dev/null || echo 0) > 16 * 1024 * 1024 )) && \
  echo "WARNING: results.tgz is over 16 MiB: the device tool will not bring it back (it stays in" \
       ".devresults on this machine; tests/recorded_checks.py keeps results/ under 15 MiB, so" \
       "look for what grew)"
ls -la "$out"
exit "$status"
