"""Paired differences of two methods scored on the same test images, over images and over seeds
(derived in ``book/08_evaluation.ipynb``).

Two methods scored on the same ``n`` images (for example :mod:`colorlab.metrics`' per-image AuC)
differ by ``d_i = a_i - b_i``. Pairing removes the variation between images that both methods
share, so a small mean difference can still be clear; with several seeds of each method, the
spread of the per-seed means says whether retraining could reverse it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["paired_difference", "paired_difference_over_seeds"]


def paired_difference(scores_a: Sequence[float] | torch.Tensor,
                      scores_b: Sequence[float] | torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the per-image differences ``a - b`` of two methods scored on
    the same ``n`` test images (for example ``metrics.json``'s ``per_image_auc``), in float64:

    ``d_i = a_i - b_i``, mean ``d̄ = (1/n) Σ d_i``, standard error ``s_d / sqrt(n)`` with
    ``s_d`` the sample standard deviation (``n - 1`` in the denominator). Pairing removes the
    variation between images that both methods share (``book/08_evaluation.ipynb``).

    >>> mean, se = paired_difference([0.9, 0.8, 0.7], [0.8, 0.8, 0.6])
    >>> round(mean, 4), round(se, 4)
    (0.0667, 0.0333)
    """
    def scores(values, name: str) -> torch.Tensor:
        try:
            out = torch.as_tensor(values, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a sequence or tensor of numbers, got "
                            f"{type(values).__name__}") from None
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"{name} must be finite (no NaN or inf)")
        return out

    a, b = scores(scores_a, "scores_a"), scores(scores_b, "scores_b")
    if a.shape != b.shape:
        raise ValueError(f"scores_a and scores_b must score the same images, got {a.numel()} and "
                         f"{b.numel()} scores")
    if a.numel() < 2:
        raise ValueError(f"scores_a and scores_b need at least 2 paired scores for a standard "
                         f"error, got {a.numel()}")
    d = a - b
    mean, se = float(d.mean()), float(d.std(correction=1) / d.numel() ** 0.5)
    if not (math.isfinite(mean) and math.isfinite(se)):
        raise ValueError("scores_a - scores_b overflows float64: pass scores of a sensible size "
                         "(e.g. AuC in [0, 1])")
    return mean, se


def paired_difference_over_seeds(per_seed_a: Sequence, per_seed_b: Sequence) -> dict:
    """Per-image differences ``a - b`` pooled over seeds, and how they compare with the variation
    between seeds (``book/08_evaluation.ipynb``).

    ``per_seed_a[s]`` and ``per_seed_b[s]`` score the same ``n`` test images with seed ``s`` of
    each method (a method with one list, an untrained baseline, pairs with every seed). With
    ``d_si = a_si - b_si``:

    * ``mean``: ``(1/(S n)) Σ_s Σ_i d_si``, and ``se``: its standard error over the ``S n``
      pooled differences (the image-to-image noise);
    * ``per_seed``: the ``S`` means ``D_s = (1/n) Σ_i d_si``, and ``seed_sd``: their sample
      standard deviation (the run-to-run variation; None for one seed);
    * ``exceeds_seeds``: ``|mean| > 2 seed_sd`` (None for one seed): the difference is larger
      than twice its spread between seeds, so retraining is unlikely to reverse it.

    >>> r = paired_difference_over_seeds([[0.9, 0.8], [0.8, 0.8]], [[0.7, 0.7]])
    >>> round(r["mean"], 3), [round(d, 2) for d in r["per_seed"]], r["exceeds_seeds"]
    (0.125, [0.15, 0.1], True)
    """
    a, b = list(per_seed_a), list(per_seed_b)
    if not a or not b or (len(a) != len(b) and 1 not in (len(a), len(b))):
        raise ValueError(f"per_seed_a and per_seed_b need one score list per seed (or one list "
                         f"for an untrained method), got {len(a)} and {len(b)}")
    seeds = max(len(a), len(b))
    a, b = (a * seeds if len(a) == 1 else a), (b * seeds if len(b) == 1 else b)
    per_seed, pooled_a, pooled_b = [], [], []
    for scores_a, scores_b in zip(a, b):
        mean, _ = paired_difference(scores_a, scores_b)
        per_seed.append(mean)
        pooled_a.extend(float(v) for v in scores_a)
        pooled_b.extend(float(v) for v in scores_b)
    mean, se = paired_difference(pooled_a, pooled_b)
    seed_sd = float(torch.tensor(per_seed, dtype=torch.float64).std()) if seeds > 1 else None
    return {"mean": mean, "se": se, "per_seed": per_seed, "seed_sd": seed_sd, "seeds": seeds,
            "exceeds_seeds": None if seed_sd is None else abs(mean) > 2 * seed_sd}
