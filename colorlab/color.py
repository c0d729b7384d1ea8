"""sRGB <-> CIE Lab conversion in PyTorch (derived in ``book/02_lab_colour.ipynb``).

The pipeline, for each pixel with sRGB components ``c`` in [0, 1]:

1. companding (IEC 61966-2-1):  ``c_lin = c / 12.92`` if ``c <= 0.04045`` else
   ``((c + 0.055) / 1.055) ** 2.4``;
2. linear RGB -> XYZ with the sRGB/D65 matrix ``M`` (rows X, Y, Z);
3. XYZ -> Lab relative to the D65 white ``(Xn, Yn, Zn) = (0.95047, 1, 1.08883)``::

       f(t) = t ** (1/3)            if t > 0.008856
              7.787 t + 16 / 116    otherwise
       L = 116 f(Y/Yn) - 16,   a = 500 (f(X/Xn) - f(Y/Yn)),   b = 200 (f(Y/Yn) - f(Z/Zn))

The constants are exactly those of :func:`skimage.color.rgb2lab`, which Zhang et al. used to
build their 313-bin gamut, so results agree with scikit-image to float rounding.
L lies in [0, 100]; for the colours of 8-bit sRGB, a lies in [-86.2, 98.2] and b in
[-107.9, 94.5].
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ._validation import (check_finite, check_finite_result, check_float, check_nonempty,
                          check_shape, check_tensor)

__all__ = ["rgb_to_lab", "lab_to_rgb", "RgbToLab", "LabToRgb", "XYZ_FROM_RGB", "D65_WHITE"]

#: sRGB (D65) linear RGB -> XYZ matrix, as in scikit-image.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
#: D65 reference white for the 2 degree observer, as in scikit-image.
D65_WHITE = (0.95047, 1.0, 1.08883)

_EPSILON = 0.008856  # f(t) switches from the cube root to the linear segment here
_KAPPA = 7.787
_OFFSET = 16.0 / 116.0


@functools.lru_cache(maxsize=64)
def _constant(name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The float64 constant ``name`` of this module, cast once per dtype and device."""
    table = {"xyz": _xyz_over_white_from_rgb(), "rgb": _rgb_from_xyz_over_white(),
             "lab": _LAB_FROM_F, "lab_offset": _LAB_OFFSET.view(3, 1)}
    return table[name].to(device=device, dtype=dtype)


def _matrix(name: str, x: torch.Tensor, offset: str | None = None) -> torch.Tensor:
    """Return ``M @ x (+ offset)`` along dimension -3 of ``x`` ``(*, 3, H, W)`` for constant ``name``."""
    flat = x.reshape(-1, 3, x.shape[-2] * x.shape[-1])
    out = torch.matmul(_constant(name, x.dtype, x.device), flat)
    if offset is not None:
        out = out.add_(_constant(offset, x.dtype, x.device))
    return out.view(x.shape)


def _xyz_over_white_from_rgb() -> torch.Tensor:
    m = torch.tensor(XYZ_FROM_RGB, dtype=torch.float64)
    return m / torch.tensor(D65_WHITE, dtype=torch.float64).view(3, 1)


def _rgb_from_xyz_over_white() -> torch.Tensor:
    return torch.linalg.inv(_xyz_over_white_from_rgb())


# Lab = _LAB_FROM_F @ (f(X/Xn), f(Y/Yn), f(Z/Zn)) + _LAB_OFFSET
_LAB_FROM_F = torch.tensor([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]],
                           dtype=torch.float64)
_LAB_OFFSET = torch.tensor([-16.0, 0.0, 0.0], dtype=torch.float64)


_CHUNK_PIXELS = 1 << 16  # pixels per block: keeps every temporary in the CPU cache


def _blockwise(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply the pixel-wise ``fn`` to ``x`` ``(*, 3, H, W)`` in cache-sized blocks.

    A colour conversion is a dozen element-wise passes; over a whole batch each pass streams the
    batch through memory, so blocks of ``_CHUNK_PIXELS`` pixels run about twice as fast on CPU.
    On CUDA, or when gradients are needed, ``fn`` runs once on the whole tensor.
    """
    pixels = x.shape[-2] * x.shape[-1]
    flat = x.reshape(-1, 3, 1, pixels)
    if x.is_cuda or (torch.is_grad_enabled() and x.requires_grad) or flat.shape[0] * pixels \
            <= _CHUNK_PIXELS:
        return fn(flat).view(x.shape)
    out = torch.empty_like(flat)
    images = max(1, _CHUNK_PIXELS // pixels)
    step = min(pixels, _CHUNK_PIXELS)
    for i in range(0, flat.shape[0], images):
        for j in range(0, pixels, step):
            out[i:i + images, :, :, j:j + step] = fn(flat[i:i + images, :, :, j:j + step])
    return out.view(x.shape)


def _check_image(x: torch.Tensor, name: str, hint: str) -> None:
    check_tensor(x, name)
    check_float(x, name, hint)
    check_shape(x, name, min_ndim=3, channels=3, layout="(*, 3, H, W)")
    check_nonempty(x, name)
    check_finite(x, name)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB to CIE Lab (D65, 2 degree observer).

    Args:
        rgb: float tensor ``(*, 3, H, W)`` with values in [0, 1] (float32 or float64, any device).
            Values outside [0, 1] are converted by the same formulas, without clipping.

    Returns:
        Lab tensor ``(*, 3, H, W)`` of the same dtype: L in [0, 100], a and b in Lab units.

    Raises:
        TypeError: for integer input such as ``uint8`` (divide by 255 first).
        ValueError: for a wrong channel count, rank < 3, NaN or inf.

    The function is differentiable everywhere (the cube root branch is only evaluated above
    0.008856). Derived in ``book/02_lab_colour.ipynb``.

    >>> import torch
    >>> white = torch.ones(1, 3, 1, 1)
    >>> [round(v, 3) for v in rgb_to_lab(white).flatten().tolist()]
    [100.0, -0.002, 0.005]
    """
    _check_image(rgb, "rgb", "rgb must be in [0, 1]: use rgb.float() / 255 for 8-bit images.")
    return check_finite_result(_blockwise(_rgb_to_lab, rgb), "rgb",
                               "sRGB values belong in [0, 1]")


def _rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    # in-place steps below only touch temporaries that autograd does not need
    high = rgb.clamp_min(0.04045).mul(1.0 / 1.055).add_(0.055 / 1.055).pow(2.4)
    linear = torch.where(rgb > 0.04045, high, rgb * (1.0 / 12.92))
    t = _matrix("xyz", linear)  # (X/Xn, Y/Yn, Z/Zn)
    f = torch.where(t > _EPSILON, t.clamp_min(_EPSILON).pow(1.0 / 3.0), t.mul(_KAPPA).add_(_OFFSET))
    return _matrix("lab", f, "lab_offset")


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Convert CIE Lab (D65, 2 degree observer) to sRGB.

    Args:
        lab: float tensor ``(*, 3, H, W)``: L in [0, 100], a and b in Lab units.
        clip: clip the result to [0, 1] (default). Many Lab triples (a saturated ab with a very
            dark or light L, for instance) have no sRGB colour; clipping maps them to the nearest
            displayable value per channel, as scikit-image does. As in scikit-image, a negative
            Z is also set to 0 before the conversion.

    Returns:
        sRGB tensor ``(*, 3, H, W)`` of the same dtype, in [0, 1] when ``clip`` is true.

    Derived in ``book/02_lab_colour.ipynb``.

    >>> import torch
    >>> lab = torch.tensor([100.0, 0.0, 0.0]).view(1, 3, 1, 1)
    >>> [round(v, 3) for v in lab_to_rgb(lab).flatten().tolist()]
    [1.0, 1.0, 1.0]
    """
    _check_image(lab, "lab", "Lab values are real numbers: convert with .float().")
    rgb = check_finite_result(_blockwise(_lab_to_rgb, lab), "lab",
                              "L belongs in [0, 100] and a, b in about [-128, 128]")
    return rgb.clamp(0.0, 1.0) if clip else rgb


def _lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    L, a, b = lab.unbind(dim=-3)
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp_min(0.0)
    f = torch.stack((fx, fy, fz), dim=-3)
    threshold = 0.2068966  # f(0.008856), as in scikit-image
    t = torch.where(f > threshold, f.clamp_min(threshold).pow(3.0), (f - _OFFSET) / _KAPPA)
    linear = _matrix("rgb", t)
    return torch.where(linear > 0.0031308,
                       1.055 * linear.clamp_min(0.0031308).pow(1.0 / 2.4) - 0.055,
                       12.92 * linear)


class RgbToLab(nn.Module):
    """Module form of :func:`rgb_to_lab`: ``(*, 3, H, W)`` sRGB in [0, 1] -> Lab.

    >>> RgbToLab()(torch.zeros(2, 3, 4, 4)).shape
    torch.Size([2, 3, 4, 4])
    """

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_lab(rgb)


class LabToRgb(nn.Module):
    """Module form of :func:`lab_to_rgb`: ``(*, 3, H, W)`` Lab -> sRGB in [0, 1].

    >>> LabToRgb()(torch.zeros(2, 3, 4, 4)).shape
    torch.Size([2, 3, 4, 4])
    """

    def __init__(self, clip: bool = True) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        return lab_to_rgb(lab, clip=self.clip)
