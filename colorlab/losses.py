"""Losses of the report: L2 regression (Eq. 1) and rebalanced cross-entropy (Eq. 2), derived in
``book/04_regression_vs_classification.ipynb``.

Both compare the prediction with the true ab at the network's output resolution (1/4 of the
input), as Zhang et al. did.
"""
from __future__ import annotations

import torch
from torch import nn

from ._validation import (check_bins, check_finite, check_finite_result, check_float,
                          check_nonempty, check_positive, check_positive_int, check_shape,
                          check_tensor, check_weights)
from .bin_search import _lattice_for
from .encode import soft_encode
from .gamut import ab_bins

__all__ = ["L2Loss", "RebalancedCrossEntropy", "l2_loss", "rebalanced_cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(per_pixel: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return per_pixel.sum()
    if reduction == "mean":
        return per_pixel.mean()
    return per_pixel


def _check_ab(ab: torch.Tensor, name: str) -> None:
    check_tensor(ab, name)
    check_float(ab, name)
    check_shape(ab, name, ndim=4, channels=2, channel_dim=1, layout="(B, 2, h, w)")
    check_nonempty(ab, name)
    check_finite(ab, name)


def l2_loss(pred_ab: torch.Tensor, ab: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. 1: ``L2(Ŷ, Y) = 1/2 sum_{h,w} ||Y_hw - Ŷ_hw||^2`` in Lab units.

    Args:
        pred_ab, ab: ``(B, 2, h, w)`` predicted and true ab.
        reduction: ``"sum"`` sums Eq. 1 over the batch; ``"mean"`` divides that by the number of
            pixels ``B*h*w`` (so the loss does not grow with the image size); ``"none"`` returns
            the per-pixel terms ``(B, h, w)``.

    >>> l2_loss(torch.zeros(1, 2, 1, 1), torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)).item()
    12.5
    """
    _check_ab(pred_ab, "pred_ab")
    _check_ab(ab, "ab")
    if pred_ab.shape != ab.shape:
        raise ValueError(f"pred_ab {tuple(pred_ab.shape)} and ab {tuple(ab.shape)} must match")
    per_pixel = check_finite_result(0.5 * (pred_ab - ab).square().sum(dim=1), "pred_ab or ab",
                                    "ab values are in Lab units, about -128 to 128")
    return _reduce(per_pixel, _check_reduction(reduction))


def rebalanced_cross_entropy(logits: torch.Tensor, ab: torch.Tensor,
                             weights: torch.Tensor | None = None, bins: torch.Tensor | None = None,
                             k: int = 5, sigma: float = 5.0, reduction: str = "mean"
                             ) -> torch.Tensor:
    """Eq. 2: ``L(Ẑ, Z) = -sum_{h,w} v(Z_hw) sum_q Z_hwq log Ẑ_hwq``.

    ``Z`` is the soft-encoded target of ``ab`` (:func:`colorlab.encode.soft_encode`, kept sparse),
    ``Ẑ = softmax(logits)`` (taken as ``log_softmax``), ``v(Z_hw) = weights[q*]`` with ``q*`` the
    nearest bin of the true ab (``weights=None``: ``v = 1``).

    Args:
        logits: ``(B, Q, h, w)`` raw network output.
        ab: ``(B, 2, h, w)`` true ab at the same resolution (no gradient flows into it).
        weights: ``(Q,)`` rebalancing weights (:func:`colorlab.prior.rebalance_weights`) or None.
        bins: ``(Q, 2)`` bin centres; default :func:`colorlab.gamut.ab_bins`.
        k, sigma: soft-encoding parameters.
        reduction: ``"sum"`` is Eq. 2 summed over the batch; ``"mean"`` divides it by ``B*h*w``;
            ``"none"`` returns ``(B, h, w)``.

    >>> logits = torch.zeros(2, 313, 4, 4)  # uniform prediction: loss = log 313 per pixel
    >>> round(rebalanced_cross_entropy(logits, torch.zeros(2, 2, 4, 4)).item(), 4)
    5.7462
    """
    check_tensor(logits, "logits")
    check_float(logits, "logits")
    check_shape(logits, "logits", ndim=4, layout="(B, Q, h, w)")
    check_finite(logits, "logits")
    _check_ab(ab, "ab")
    if logits.shape[0] != ab.shape[0] or logits.shape[2:] != ab.shape[2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and ab {tuple(ab.shape)} must share batch "
                         f"size and resolution: downsample ab to the output size first")
    reduction = _check_reduction(reduction)
    bins = ab_bins(torch.float64) if bins is None else bins  # stays where it is: see nearest_bins
    check_bins(bins)
    if logits.shape[1] != bins.shape[0]:
        raise ValueError(f"logits has {logits.shape[1]} channels for {bins.shape[0]} bins")
    idx, w = soft_encode(ab.detach(), bins, k, sigma)
    log_p = torch.log_softmax(logits, dim=1)
    per_pixel = -(w.to(log_p.dtype) * log_p.gather(1, idx)).sum(dim=1)
    if weights is not None:
        check_weights(weights, bins.shape[0])
        per_pixel = check_finite_result(
            per_pixel * weights.to(device=logits.device, dtype=log_p.dtype)[idx[:, 0]], "weights",
            "rebalancing weights are of order 1 (colorlab.prior.rebalance_weights)")
    return _reduce(per_pixel, reduction)


class L2Loss(nn.Module):
    """Module form of :func:`l2_loss` (Eq. 1).

    >>> L2Loss(reduction="sum")(torch.zeros(2, 2, 3, 3), torch.ones(2, 2, 3, 3)).item()
    18.0
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, pred_ab: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return l2_loss(pred_ab, ab, self.reduction)


class RebalancedCrossEntropy(nn.Module):
    """Module form of :func:`rebalanced_cross_entropy` (Eq. 2); ``weights=None``: no rebalancing.

    The weights are a buffer, so ``.to(device)`` moves them with the module; the bins stay on the
    CPU, where the nearest-bin search builds its lookup table once (no per-step device transfer).

    >>> loss = RebalancedCrossEntropy(k=5, sigma=5.0)
    >>> round(loss(torch.zeros(1, 313, 2, 2), torch.zeros(1, 2, 2, 2)).item(), 4)
    5.7462
    """

    def __init__(self, weights: torch.Tensor | None = None, k: int = 5, sigma: float = 5.0,
                 reduction: str = "mean", bins: torch.Tensor | None = None) -> None:
        super().__init__()
        self.sigma = check_positive(sigma, "sigma")
        self.reduction = _check_reduction(reduction)
        if bins is not None:
            check_bins(bins)
        self.bins = ab_bins(torch.float64) if bins is None else bins.detach().to("cpu").clone()
        self.k = check_positive_int(k, "k", maximum=self.bins.shape[0])  # now, not at first use
        # the search's lookup tables (and their copies on a device) live as long as the loss: a
        # training step recorded as a CUDA graph reads them at every replay (colorlab.step_graph)
        self._lattice = _lattice_for(self.bins)
        if weights is not None:
            weights = check_weights(weights, self.bins.shape[0]).detach().clone().float()
        self.register_buffer("weights", weights)

    def forward(self, logits: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return rebalanced_cross_entropy(logits, ab, self.weights, self.bins, self.k, self.sigma,
                                        self.reduction)
