"""colorlab: automatic image colorization (Zhang, Isola & Efros 2016) in PyTorch.

The library behind the colorlab book. Modules, each derived in a chapter of the book:

* :mod:`colorlab.color`: sRGB <-> CIE Lab.
* :mod:`colorlab.gamut`: the 313 quantized ab bins and exact nearest-bin search.
* :mod:`colorlab.encode`: sparse soft-encoding of ab targets.
* :mod:`colorlab.prior`: empirical priors and class-rebalancing weights.
* :mod:`colorlab.losses`: L2 (Eq. 1) and rebalanced cross-entropy (Eq. 2).
* :mod:`colorlab.decode`: annealed mean (Eq. 3), mean and mode.
* :mod:`colorlab.models`: the report's network.
* :mod:`colorlab.metrics`, :mod:`colorlab.classifier`: AuC and classifier accuracy.
* :mod:`colorlab.data`, :mod:`colorlab.train`, :mod:`colorlab.reproduce`: datasets, trainer, runs.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .color import LabToRgb, RgbToLab, lab_to_rgb, rgb_to_lab
from .decode import AnnealedMean, annealed_mean
from .encode import SoftEncoder, soft_encode, to_dense
from .gamut import ab_bins, nearest_bin, nearest_bins, srgb_reachable_bins
from .losses import L2Loss, RebalancedCrossEntropy
from .metrics import auc, rebalanced_auc
from .models import ColorizationNet
from .prior import empirical_prior, rebalance_weights, smooth_prior

__all__ = ["__version__", "rgb_to_lab", "lab_to_rgb", "RgbToLab", "LabToRgb", "ab_bins",
           "nearest_bin", "nearest_bins", "srgb_reachable_bins", "soft_encode", "to_dense",
           "SoftEncoder", "annealed_mean", "AnnealedMean", "empirical_prior", "smooth_prior",
           "rebalance_weights", "L2Loss", "RebalancedCrossEntropy", "ColorizationNet", "auc",
           "rebalanced_auc"]
