"""Soft-encoding of ab targets over the quantized gamut (derived in
``book/04_regression_vs_classification.ipynb``).

Zhang et al. replace the one-hot target of a pixel by a soft distribution over its k nearest bins
``q_1..q_k`` (distances ``d_j``), with Gaussian weights

    Z_q = exp(-d_q^2 / (2 sigma^2)) / sum_j exp(-d_j^2 / (2 sigma^2)),   q in {q_1..q_k}

and 0 elsewhere. colorlab keeps the target sparse, as ``(idx, w)`` pairs: a dense
``(B, 313, H, W)`` target is never built in training (:func:`to_dense` exists for plots and tests).
"""
from __future__ import annotations

import torch

from ._validation import (check_bins, check_finite, check_float, check_positive,
                          check_positive_int, check_shape, check_tensor)
from .gamut import nearest_bins

__all__ = ["soft_encode", "to_dense", "SoftEncoder"]


def soft_encode(ab: torch.Tensor, bins: torch.Tensor | None = None, k: int = 5,
                sigma: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-encode ab values over their ``k`` nearest bins.

    Args:
        ab: float tensor ``(B, 2, H, W)`` in Lab units (any device).
        bins: ``(Q, 2)`` bin centres; default the 313 of :func:`colorlab.gamut.ab_bins`.
        k: neighbours per pixel, ``1 <= k <= Q`` (Zhang et al.'s paper: 5; their code: 10).
        sigma: Gaussian width in Lab units, > 0.

    Returns:
        ``(idx, w)``, both ``(B, k, H, W)``: bin indices (int64), nearest first (ties: smaller
        a, then b), and weights (dtype of ``ab``) that sum to 1 over the k dimension.

    >>> ab = torch.tensor([[[[5.0]], [[0.0]]]])  # halfway between the bins (0, 0) and (10, 0)
    >>> idx, w = soft_encode(ab, k=2)
    >>> idx.flatten().tolist(), w.flatten().tolist()
    ([120, 139], [0.5, 0.5])
    """
    check_tensor(ab, "ab")
    check_shape(ab, "ab", ndim=4, channels=2, channel_dim=1, layout="(B, 2, H, W)")
    sigma = check_positive(sigma, "sigma")
    idx, d2 = nearest_bins(ab, k, bins)
    return idx, _gaussian_weights(d2, sigma)


def _gaussian_weights(d2: torch.Tensor, sigma: float) -> torch.Tensor:
    """``softmax(-d2 / 2 sigma^2)`` over dim 1, for any finite sigma > 0.

    Distances are taken relative to the nearest bin's (``d2`` is sorted, nearest first), which
    leaves the softmax unchanged and keeps the nearest term at exp(0) = 1: a tiny sigma gives the
    one-hot limit (ties shared) instead of 0/0, and a huge sigma the uniform limit, never NaN or
    an overflow.

    >>> d2 = torch.tensor([[1.0, 4.0]]).view(1, 2, 1, 1)
    >>> _gaussian_weights(d2, 1e-200).flatten().tolist(), _gaussian_weights(d2, 1e200).flatten().tolist()
    ([1.0, 0.0], [0.5, 0.5])
    """
    scale = 0.5 / (sigma * sigma) if sigma * sigma > 0 else float("inf")
    excess = d2 - d2[:, :1]
    logits = torch.where(excess > 0, excess * -scale, torch.zeros_like(excess))
    return torch.softmax(logits, dim=1)


def to_dense(idx: torch.Tensor, w: torch.Tensor, num_bins: int = 313) -> torch.Tensor:
    """Scatter a sparse ``(idx, w)`` target ``(B, k, H, W)`` into a dense ``(B, Q, H, W)`` one.

    >>> idx = torch.tensor([0, 2]).view(1, 2, 1, 1); w = torch.tensor([0.75, 0.25]).view(1, 2, 1, 1)
    >>> to_dense(idx, w, num_bins=3).flatten().tolist()
    [0.75, 0.0, 0.25]
    """
    check_tensor(idx, "idx")
    check_tensor(w, "w")
    if idx.shape != w.shape or idx.ndim != 4:
        raise ValueError(f"idx and w must have the same shape (B, k, H, W), got {tuple(idx.shape)} "
                         f"and {tuple(w.shape)}")
    num_bins = check_positive_int(num_bins, "num_bins")
    check_float(w, "w")
    check_finite(w, "w")
    if idx.dtype != torch.long:
        raise TypeError(f"idx must be int64 bin indices, got {idx.dtype}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_bins):
        raise ValueError(f"idx holds values outside [0, {num_bins}); pass the right num_bins")
    dense = w.new_zeros(idx.shape[0], num_bins, *idx.shape[2:])
    return dense.scatter_add_(1, idx, w)


class SoftEncoder(torch.nn.Module):
    """Module form of :func:`soft_encode` (the bins stay on the CPU, where the search builds its
    lookup table once; inputs may live on any device).

    >>> enc = SoftEncoder(k=5)
    >>> [t.shape for t in enc(torch.zeros(2, 2, 8, 8))]
    [torch.Size([2, 5, 8, 8]), torch.Size([2, 5, 8, 8])]
    """

    def __init__(self, bins: torch.Tensor | None = None, k: int = 5, sigma: float = 5.0) -> None:
        super().__init__()
        from .gamut import ab_bins

        if bins is not None:
            check_bins(bins)
        self.bins = ab_bins(torch.float64) if bins is None else bins.detach().to("cpu").clone()
        self.k = check_positive_int(k, "k", maximum=self.bins.shape[0])  # now, not at first use
        self.sigma = check_positive(sigma, "sigma")

    def forward(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return soft_encode(ab, self.bins, self.k, self.sigma)
