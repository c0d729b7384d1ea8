"""From a predicted distribution over the 313 bins to an ab value (derived in
``book/05_annealed_mean.ipynb``).

The annealed mean of Zhang et al. (Eq. 3 of the report) re-sharpens the predicted distribution
``Z = softmax(logits)`` with a temperature ``T`` before taking its expectation:

    f_T(z)_q = exp(log z_q / T) / sum_p exp(log z_p / T),      H(Z) = sum_q f_T(z)_q * bin_q

``T = 1`` is the plain mean (desaturated), ``T -> 0`` tends to the mode (vivid but patchy);
Zhang et al. use ``T = 0.38``. Computed in log space, ``f_T = softmax(log_softmax(logits) / T)``,
so it stays finite for T down to 1e-3 and for logits that contain -inf.
"""
from __future__ import annotations

import torch

from ._validation import (check_bins, check_float, check_nonempty, check_positive, check_shape,
                          check_tensor)
from .gamut import ab_bins

__all__ = ["DEFAULT_T", "annealed_mean", "mean", "mode", "AnnealedMean"]

#: the temperature Zhang et al. chose for the annealed mean (``book/05_annealed_mean.ipynb``)
DEFAULT_T = 0.38


def _check_logits(logits: torch.Tensor, bins: torch.Tensor | None) -> torch.Tensor:
    check_tensor(logits, "logits")
    check_float(logits, "logits")
    check_shape(logits, "logits", ndim=4, layout="(B, Q, h, w)")
    check_nonempty(logits, "logits")
    bins = ab_bins(logits.dtype, logits.device) if bins is None else bins
    check_bins(bins)
    if logits.shape[1] != bins.shape[0]:
        raise ValueError(f"logits has {logits.shape[1]} channels but there are {bins.shape[0]} "
                         f"bins; logits must be (B, Q, h, w) with Q = len(bins)")
    if bool(torch.isnan(logits).any()) or bool((logits == float("inf")).any()):
        raise ValueError("logits contains NaN or +inf; -inf is allowed (a bin with zero mass)")
    if bool((logits == float("-inf")).all(dim=1).any()):
        raise ValueError("logits has a pixel whose logits are all -inf: no distribution to decode")
    return bins.to(device=logits.device, dtype=logits.dtype)


def _expectation(p: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bqhw,qc->bchw", p, bins)


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor | None = None, T: float = DEFAULT_T
                  ) -> torch.Tensor:
    """Annealed mean of the distribution ``softmax(logits)`` over the bins.

    Args:
        logits: raw network output ``(B, Q, h, w)`` (float; -inf allowed, NaN/+inf not).
        bins: ``(Q, 2)`` bin centres; default the 313 of :func:`colorlab.gamut.ab_bins`.
        T: temperature > 0. ``T = 1`` gives :func:`mean`; ``T -> 0`` tends to :func:`mode`.

    Returns:
        ab ``(B, 2, h, w)`` in Lab units.

    >>> logits = torch.full((1, 313, 1, 1), -10.0); logits[0, 160] = 0.0  # a peaked prediction
    >>> annealed_mean(logits, T=0.01).flatten().tolist() == mode(logits).flatten().tolist()
    True
    """
    bins = _check_logits(logits, bins)
    T = check_positive(T, "T")
    # shifted so that the largest term is exp(0) = 1: any T > 0, even one that sends every other
    # term to -inf, gives a distribution (the mode's, ties shared), never 0/0
    log_p = torch.log_softmax(logits, dim=1)
    log_p = log_p - log_p.amax(dim=1, keepdim=True)
    return _expectation(torch.softmax(torch.where(log_p < 0, log_p / T, 0.0), dim=1), bins)


def mean(logits: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Expected ab under ``softmax(logits)``: ``(B, Q, h, w) -> (B, 2, h, w)`` (annealed mean, T=1).

    >>> mean(torch.zeros(1, 313, 1, 1)).shape
    torch.Size([1, 2, 1, 1])
    """
    bins = _check_logits(logits, bins)
    return _expectation(torch.softmax(logits, dim=1), bins)


def mode(logits: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """ab of the most probable bin: ``(B, Q, h, w) -> (B, 2, h, w)`` (first bin on ties).

    >>> logits = torch.zeros(1, 313, 1, 1); logits[0, 0] = 1.0
    >>> mode(logits).flatten().tolist()
    [-90.0, 50.0]
    """
    bins = _check_logits(logits, bins)
    return bins[logits.argmax(dim=1)].movedim(-1, 1)


class AnnealedMean(torch.nn.Module):
    """Module form of :func:`annealed_mean` with a fixed temperature.

    >>> AnnealedMean(T=0.38)(torch.zeros(2, 313, 4, 4)).shape
    torch.Size([2, 2, 4, 4])
    """

    def __init__(self, T: float = DEFAULT_T, bins: torch.Tensor | None = None) -> None:
        super().__init__()
        self.T = check_positive(T, "T")
        if bins is not None:
            check_bins(bins)
        self.register_buffer("bins", ab_bins() if bins is None else bins.clone())

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return annealed_mean(logits, self.bins, self.T)
