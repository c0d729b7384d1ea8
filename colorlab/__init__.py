"""colorlab: automatic image colorization (Zhang, Isola & Efros 2016) in PyTorch.

The library behind the colorlab book. Every public module, by role (the chapter that derives or
uses it in parentheses):

Colour and the ab gamut (chapters 2-3):

* :mod:`colorlab.color`: sRGB <-> CIE Lab, batched and differentiable.
* :mod:`colorlab.gamut`: the 313 quantized ab bins and exact nearest-bin search.

Targets, losses and decoding (chapters 4-5):

* :mod:`colorlab.encode`: sparse soft-encoding of ab targets (Eq. 2's Z).
* :mod:`colorlab.prior`: empirical priors and class-rebalancing weights.
* :mod:`colorlab.losses`: L2 (Eq. 1) and rebalanced cross-entropy (Eq. 2).
* :mod:`colorlab.decode`: annealed mean (Eq. 3), mean, mode and the default temperature.

The network (chapter 6):

* :mod:`colorlab.models`: the report's network and its two heads.
* :mod:`colorlab.summary`: its layers and blocks as tables (shapes, parameters, receptive field).

Data (chapters 2 and 7):

* :mod:`colorlab.paths`: where data, results and caches live (COLORLAB_* settings).
* :mod:`colorlab.images`: reading image files safely (EXIF, bombs, unreadable files).
* :mod:`colorlab.datasets_base`: a decoded, cached, split data set and the image-folder reader.
* :mod:`colorlab.data`: CelebA, the fruits and the sample images.
* :mod:`colorlab.batches`: augmentation and Lab conversion of batches.
* :mod:`colorlab.download`: colorlab data download, checked against the book's manifests.

Training (chapter 7):

* :mod:`colorlab.train_config`: a run's configuration, its model and device.
* :mod:`colorlab.train`: the Trainer: exact resume, best.pt, validation.
* :mod:`colorlab.checkpoint`: atomic files, checkpoints and folder locks.
* :mod:`colorlab.precision`: bf16/fp16/fp32 by compute capability.
* :mod:`colorlab.distributed`: several GPUs with torchrun and DDP.
* :mod:`colorlab.run_pool`: several runs on one GPU, one process each.
* :mod:`colorlab.scaling`: expected multi-GPU throughput.
* :mod:`colorlab.estimate`: what a reproduction costs on another GPU.

Evaluation (chapters 8-9):

* :mod:`colorlab.metrics`: AuC, rebalanced AuC, error curves, paired differences over images and seeds.
* :mod:`colorlab.colorfulness`: mean chroma, Hasler-Süsstrunk colourfulness, saturation histograms.
* :mod:`colorlab.classifier`: the ImageNet classifier test.
* :mod:`colorlab.evaluate`: every measure of every method on a test split.
* :mod:`colorlab.failures`: per-image scores and the report's failure modes.

The reproduction and its results (chapters 7-9):

* :mod:`colorlab.table1`: the experiment's design (data sets, runs, methods) and Table 1.
* :mod:`colorlab.reproduce`: colorlab reproduce: profiles, runs, results/.
* :mod:`colorlab.reproduce_runs`: one run: train with a seed, evaluate at two points.
* :mod:`colorlab.results_folder`: keeping finished work, never replacing a larger run.
* :mod:`colorlab.results`: the recorded results a chapter shows.
* :mod:`colorlab.fetch_results`: colorlab results fetch, outside a checkout.

Figures and pages (every chapter):

* :mod:`colorlab.plots`: figures drawn from library objects.
* :mod:`colorlab.report_figures`: the report's figures drawn from a results folder.
* :mod:`colorlab.pages`: computed text, images and source code on the book's pages.

Command line and benchmarks (README):

* :mod:`colorlab.cli`: the colorlab command and its one-line errors.
* :mod:`colorlab.commands`: its sub-commands.
* :mod:`colorlab.colorize`: colorizing image files.
* :mod:`colorlab.bench`: colorlab bench core (and the entry of bench train).
* :mod:`colorlab.train_bench`: colorlab bench train: images/s against the device's ceiling.

The names imported here (``colorlab.rgb_to_lab``, ...) are the stable public API.
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
