"""Before a reproduction uses CUDA graphs on a device: train a small model for a few epochs with
its step launched kernel by kernel and with it replayed from a CUDA graph, and say whether the
graph was recorded and both trained alike (scripts/device/reproduce.sh runs this first).

    python scripts/device/check_graphs.py [--device cuda]   # exit 0: use graphs; 1: do not

Synthetic images (no data needed): 88 uint8 images of 32x32, a width-1/4 classification
network, batch 16, 8 epochs, the same seed both ways. On a GPU, bf16 autocast and the backward
pass's atomics make two runs differ a little; a recorded step that replays stale inputs or a
frozen optimizer would differ by more than the 1 % allowed (5 % for the validation loss, which
swings with BatchNorm's running statistics), or learn less than half as much.
On a CPU nothing is recorded, and the check says so and exits 1.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings

import torch

from colorlab.bench import synthetic_dataset
from colorlab.train import TrainConfig, Trainer


def train(graphs: bool, device: str) -> tuple[list[dict], bool]:
    config = TrainConfig(loss="ce", width=0.25, epochs=8, batch_size=16, size=32, lr=1e-3,
                         checkpoint_every=8)
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(config, synthetic_dataset(88, 32, 0), synthetic_dataset(24, 32, 1),
                          run, device=device, progress=False)
        trainer.cuda_graphs = graphs
        return trainer.fit(), trainer.graphed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    eager, _ = train(False, args.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphed, recorded = train(True, args.device)
    for w in caught:
        print(f"warning: {w.message}")
    for a, b in zip(eager, graphed):
        print(f"epoch {a['epoch']}: train loss {a['train_loss']:.4f} eager, "
              f"{b['train_loss']:.4f} graph; val loss {a['val_loss']:.4f}, {b['val_loss']:.4f}")
    # the validation loss swings with BatchNorm's running statistics: it gets 5 %
    alike = all(abs(b[key] - a[key]) <= tol * abs(a[key]) for a, b in zip(eager, graphed)
                for key, tol in (("train_loss", 0.01), ("val_loss", 0.05)))
    drop = {name: h[0]["train_loss"] - h[-1]["train_loss"]
            for name, h in (("eager", eager), ("graph", graphed))}
    learns = drop["eager"] > 0 and drop["graph"] >= 0.5 * drop["eager"]
    ok = recorded and alike and learns
    print(f"CUDA graph recorded: {recorded}; losses alike: {alike}; training loss fell by "
          f"{drop['graph']:.4f} with the graph, {drop['eager']:.4f} without -> "
          f"{'use' if ok else 'do not use'} CUDA graphs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
