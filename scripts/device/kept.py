"""What an earlier device call left in ``.devresults/`` that this call may keep
(scripts/device/reproduce.sh asks, in the repository root):

    python3 scripts/device/kept.py results PROFILE   # exit 0: results/ is finished (same code,
                                                     # same profile): not run again
    python3 scripts/device/kept.py graphs            # exit 0: the kept check says use graphs;
                                                     # 1: do not; 2: none for this device and code
    python3 scripts/device/kept.py save-graphs LOG   # keep the verdict on LOG's last line

Each prints one line that says why. A finished reproduction is kept only when its provenance names
this profile (all of it), the classifier and the hash of this code, the key with which
``colorlab reproduce`` itself keeps finished work. The graph check's verdict is kept under the
GPU's name, torch's version and that hash: after a change to the code, on another card or torch, the
check runs again. Only a verdict the check printed is kept: a check that crashed or was cut off
decides nothing.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch

from colorlab.evaluate import CLASSIFIERS
from colorlab.reproduce import PROFILES, reproduction_key
from colorlab.source_code import source_hash

STATE = Path(".devresults")
VERDICT = re.compile(r"-> (use|do not use) CUDA graphs$")


def finished_results(profile: str, state: Path = STATE) -> tuple[bool, str]:
    """Whether ``state/results`` holds a finished reproduction that ``colorlab reproduce
    --profile PROFILE`` would keep: the same :func:`colorlab.reproduce.reproduction_key`."""
    path = state / "results" / "provenance.json"
    if not path.is_file():
        return False, "no finished reproduction in .devresults/results"
    try:
        provenance = json.loads(path.read_text())
    except ValueError as err:
        return False, f"{path} is unreadable ({err}): the reproduction runs"
    key = reproduction_key(PROFILES[profile], CLASSIFIERS[0])  # the command line's default
    other = [name for name, value in key.items() if provenance.get(name) != value]
    if other:
        return False, f"{path} has another {' and '.join(other)}: the reproduction runs"
    return True, "finished by an earlier call of this code (.devresults/results)"


def graphs_key() -> dict:
    """What a graph check's verdict holds for: this GPU, this torch and this code."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"device": device, "torch": torch.__version__, "sources": source_hash()}


def save_graphs(log: Path, state: Path = STATE) -> tuple[bool, str]:
    """Keep the verdict on the last line of ``check_graphs.py``'s output ``log``."""
    lines = log.read_text().strip().splitlines() if log.is_file() else []
    found = VERDICT.search(lines[-1]) if lines else None
    if found is None:
        return False, "the graph check printed no verdict: none is kept"
    state.mkdir(exist_ok=True)
    (state / "graphs-check.json").write_text(json.dumps(
        {"key": graphs_key(), "use": found.group(1) == "use", "line": lines[-1]}))
    return True, f"kept for the next call: {found.group(1)} CUDA graphs"


def kept_graphs(state: Path = STATE) -> tuple[bool | None, str]:
    """The kept verdict for this device and code: True (use graphs), False, or None (none)."""
    path = state / "graphs-check.json"
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, "no graph check kept: it runs"
    if kept.get("key") != graphs_key():
        return None, f"the kept graph check was for {kept.get('key')}: it runs again"
    return bool(kept["use"]), f"the check of an earlier call on this device and code says: " \
                              f"{kept['line']}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["results"] and len(argv) == 2 and argv[1] in PROFILES:
        ok, why = finished_results(argv[1])
        print(f"reproduce: {why}")
        return 0 if ok else 1
    if argv == ["graphs"]:
        use, why = kept_graphs()
        print(f"CUDA graphs: {why}")
        return 2 if use is None else 0 if use else 1
    if argv[:1] == ["save-graphs"] and len(argv) == 2:
        _, why = save_graphs(Path(argv[1]))
        print(f"CUDA graphs: {why}")
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
