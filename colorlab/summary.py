"""A layer-by-layer account of :class:`~colorlab.models.ColorizationNet` (``book/06_network.ipynb``):
output shapes, parameter counts and receptive fields, from which the report's Fig. 1 is drawn.

The receptive field follows the usual recursion over layers with kernel ``k``, stride ``s`` and
dilation ``d``: ``r_out = r_in + (k - 1) d j_in`` and ``j_out = j_in s``, where ``j`` is the
distance in input pixels between neighbouring outputs (an x2 upsampling halves ``j``).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["layer_table", "block_table"]


def layer_table(model: nn.Module, size: int = 176) -> list[dict]:
    """One row per convolution/upsampling layer: name, output shape ``(C, H, W)``, parameters
    (including the BatchNorm that closes a block), receptive field and jump in input pixels, and
    the forward FLOPs of its convolution (2 x multiply-adds, one image).

    >>> from colorlab.models import ColorizationNet
    >>> rows = layer_table(ColorizationNet(), 176)
    >>> rows[-1]["shape"], sum(r["params"] for r in rows)
    ((313, 44, 44), 24788032)
    """
    rows: list[dict] = []
    rf, jump = 1.0, 1.0
    shapes: dict[nn.Module, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.__setitem__(m, tuple(o.shape[1:])))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Upsample, nn.BatchNorm2d))]
    try:
        was = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, size, size, device=next(model.parameters()).device))
        model.train(was)
    finally:
        for h in hooks:
            h.remove()
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            k, s, d = m.kernel_size[0], m.stride[0], m.dilation[0]
            rf += (k - 1) * d * jump
            jump *= s
            c, h, w = shapes[m]
            macs = k * m.kernel_size[1] * m.in_channels // m.groups * c * h * w
            rows.append({"layer": name, "type": f"conv {k}x{k}" + (f" s{s}" if s > 1 else "")
                         + (f" d{d}" if d > 1 else ""), "shape": shapes[m],
                         "params": sum(p.numel() for p in m.parameters()), "receptive_field": rf,
                         "jump": jump, "flops": 2.0 * macs})
        elif isinstance(m, nn.Upsample):
            jump /= m.scale_factor
            rows.append({"layer": name, "type": "upsample x2", "shape": shapes[m], "params": 0,
                         "receptive_field": rf, "jump": jump, "flops": 0.0})
        elif isinstance(m, nn.BatchNorm2d) and rows:
            rows[-1]["params"] += sum(p.numel() for p in m.parameters())
            rows[-1]["type"] += " + BN"
    return rows


def block_table(model: nn.Module, size: int = 176) -> list[dict]:
    """The rows of :func:`layer_table` grouped by block (``blocks.0`` ... ``head``).

    >>> from colorlab.models import ColorizationNet
    >>> [r["block"] for r in block_table(ColorizationNet(width=0.125), 32)][:3]
    ['block 1', 'block 2', 'block 3']
    """
    out: list[dict] = []
    for row in layer_table(model, size):
        parts = row["layer"].split(".")
        block = f"block {int(parts[1]) + 1}" if parts[0] == "blocks" else "head"
        if not out or out[-1]["block"] != block:
            out.append({"block": block, "layers": 0, "params": 0})
        entry = out[-1]
        entry["layers"] += 1
        entry["params"] += row["params"]
        entry["shape"], entry["receptive_field"] = row["shape"], row["receptive_field"]
    return out
