"""The report's colorization network (Fig. 1) and a layer-by-layer account of it, derived in
``book/06_network.ipynb``.

Eight convolutional blocks (3x3 convolutions with bias and ReLU, then BatchNorm and Dropout 0.1),
dilated blocks 5-6, a nearest-neighbour x2 upsampling in block 8 and a 1x1 head: 313 logits for
the classification head, 2 ab values for the regression head. The input is ``L / 100``; the output
lives at 1/4 of the input resolution (44x44 for 176x176), where the loss is computed.

:func:`layer_table` and :func:`block_table` list output shapes, parameter counts and receptive
fields, from which the report's Fig. 1 is drawn. The receptive field follows the usual recursion
over layers with kernel ``k``, stride ``s`` and dilation ``d``: ``r_out = r_in + (k - 1) d j_in``
and ``j_out = j_in s``, where ``j`` is the distance in input pixels between neighbouring outputs
(an x2 upsampling halves ``j``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (check_finite, check_finite_result, check_float, check_nonempty,
                          check_positive, check_shape, check_tensor)
from .decode import DEFAULT_T, annealed_mean
from .gamut import NUM_BINS

__all__ = ["ColorizationNet", "AB_SCALE", "MAX_WIDTH", "layer_table", "block_table"]


AB_SCALE = 110.0  #: the regression head predicts ab / AB_SCALE; forward() returns Lab units
MAX_WIDTH = 16.0  #: the largest channel multiplier (width 1 is the report's network)

# (in, out, stride, dilation) for the convolutions of each block, at width 1
_BLOCKS: tuple[tuple[tuple[int, int, int, int], ...], ...] = (
    ((1, 64, 1, 1), (64, 64, 2, 1)),
    ((64, 128, 1, 1), (128, 128, 2, 1)),
    ((128, 256, 1, 1), (256, 256, 1, 1), (256, 256, 2, 1)),
    ((256, 512, 1, 1), (512, 512, 1, 1), (512, 512, 1, 1)),
    ((512, 512, 1, 2), (512, 512, 1, 2), (512, 512, 1, 2)),
    ((512, 512, 1, 2), (512, 512, 1, 2), (512, 512, 1, 2)),
    ((512, 256, 1, 1), (256, 256, 1, 1), (256, 256, 1, 1)),
    ((256, 128, 1, 1), (128, 128, 1, 1), (128, 128, 1, 1)),
)
#: the two heads: 313 logits per pixel (Eq. 2) or ab (Eq. 1)
HEADS = ("classification", "regression")


def _block(convs: tuple[tuple[int, int, int, int], ...], width: float, upsample: bool,
           first_in: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
    out = first_in
    for i, (c_in, c_out, stride, dilation) in enumerate(convs):
        c_in = first_in if i == 0 else out
        out = max(1, round(c_out * width))
        layers += [nn.Conv2d(c_in, out, 3, stride=stride, padding=dilation, dilation=dilation),
                   nn.ReLU(inplace=True)]
    layers += [nn.BatchNorm2d(out), nn.Dropout(0.1)]
    return nn.Sequential(*layers)


class ColorizationNet(nn.Module):
    """The report's network: ``L (B, 1, H, W)`` -> logits ``(B, 313, H/4, W/4)`` or ab.

    Args:
        head: ``"classification"`` (313 logits per pixel, Eq. 2) or ``"regression"`` (ab in Lab
            units, Eq. 1; internally the head predicts ``ab / 110``).
        width: channel multiplier; 1.0 is the report's network (24,788,032 parameters with the
            classification head), small values give tiny models for CPU tests.

    ``forward`` takes L in [0, 100] and divides it by 100. H and W must be multiples of 8.

    Dtype rule: ``L`` may have any floating dtype. Outside autocast it is cast to the dtype of
    the network's parameters (float32, or what ``.half()``/``.to(torch.bfloat16)`` made them);
    under ``torch.autocast`` the blocks run in autocast's bf16/fp16. The 1x1 head computes in the
    parameters' dtype, float32 by default also under autocast, and the output is float32 in every
    case.

    >>> net = ColorizationNet(width=0.125)
    >>> net(torch.rand(2, 1, 32, 32) * 100).shape
    torch.Size([2, 313, 8, 8])
    >>> sum(p.numel() for p in ColorizationNet().parameters())
    24788032
    """

    def __init__(self, head: str = "classification", width: float = 1.0) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head_type, self.width = head, check_positive(width, "width")
        if self.width > MAX_WIDTH:
            raise ValueError(f"width must be at most {MAX_WIDTH} ({MAX_WIDTH}x the report's "
                             f"channels, about {MAX_WIDTH ** 2 * 25:.0f} million parameters), "
                             f"got {width!r}")
        blocks, c_in = [], 1
        for i, convs in enumerate(_BLOCKS):
            block = _block(convs, self.width, upsample=(i == 7), first_in=c_in)
            c_in = block[-2].num_features
            blocks.append(block)
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = NUM_BINS if head == "classification" else 2
        self.head = nn.Conv2d(c_in, self.out_channels, 1, bias=False)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """``L`` ``(B, 1, H, W)`` in [0, 100] -> ``(B, 313 or 2, H/4, W/4)``."""
        check_tensor(L, "L")
        check_float(L, "L")
        check_shape(L, "L", ndim=4, channels=1, channel_dim=1, layout="(B, 1, H, W)")
        check_nonempty(L, "L")
        check_finite(L, "L")
        if L.shape[-2] % 8 or L.shape[-1] % 8:
            raise ValueError(f"L height and width must be multiples of 8, got {tuple(L.shape[-2:])}; "
                             f"resize or crop the image (colorize() does this for you)")
        if not torch.is_autocast_enabled(L.device.type):
            L = L.to(self.head.weight.dtype)  # the dtype rule: see the class docstring
        features = self.blocks(L / 100.0)
        # the 1x1 head runs in float32 even under autocast: bf16 keeps 8 bits of mantissa, and the
        # annealed mean divides the logits by T = DEFAULT_T, so its rounding would reach the colours
        with torch.autocast(features.device.type, enabled=False):
            out = self.head(features.to(self.head.weight.dtype)).float()
        out = out * AB_SCALE if self.head_type == "regression" else out
        return check_finite_result(out, "L", "L belongs in [0, 100]")

    @torch.no_grad()
    def colorize(self, L: torch.Tensor, T: float = DEFAULT_T) -> torch.Tensor:
        """Predict ab at the input resolution: ``(B, 1, H, W)`` L -> ``(B, 2, H, W)`` ab.

        The classification head is decoded with the annealed mean at temperature ``T``
        (:func:`colorlab.decode.annealed_mean`) at 1/4 resolution; only the 2-channel ab is
        upsampled (bilinear). Any H, W: the input is resized to the nearest multiple of 8 first.
        The module's train/eval mode is restored afterwards.

        >>> ColorizationNet(width=0.125).colorize(torch.rand(1, 1, 30, 45) * 100).shape
        torch.Size([1, 2, 30, 45])
        """
        check_tensor(L, "L")
        check_float(L, "L")
        check_shape(L, "L", ndim=4, channels=1, channel_dim=1, layout="(B, 1, H, W)")
        check_nonempty(L, "L")
        T = check_positive(T, "T")  # also for the regression head, which does not use it
        was_training = self.training
        self.eval()
        try:
            h, w = L.shape[-2:]
            size = (max(8, round(h / 8) * 8), max(8, round(w / 8) * 8))
            x = L if (h, w) == size else F.interpolate(L, size=size, mode="bilinear",
                                                       align_corners=False)
            out = self(x.float())
            ab = annealed_mean(out.float(), T=T) if self.head_type == "classification" else out
            return F.interpolate(ab.float(), size=(h, w), mode="bilinear", align_corners=False)
        finally:
            self.train(was_training)


def layer_table(model: nn.Module, size: int = 176) -> list[dict]:
    """One row per convolution/upsampling layer: name, output shape ``(C, H, W)``, parameters
    (including the BatchNorm that closes a block), receptive field and jump in input pixels, and
    the forward FLOPs of its convolution (2 x multiply-adds, one image).

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
