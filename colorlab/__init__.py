"""colorlab: automatic image colorization (Zhang, Isola & Efros 2016) in PyTorch.

The library behind the colorlab book. Every public module, by role (the chapter that derives or
uses it in parentheses):

Colour and the ab gamut (chapters 2-3):

* :mod:`colorlab.color`: sRGB <-> CIE Lab, batched and differentiable.
* :mod:`colorlab.gamut`: the 313 quantized ab bins and exact nearest-bin search.
* :mod:`colorlab.bin_search`: the search itself: 16 lattice sites per point, exact, and its
  exactness flags kept on the device while training.

Targets, losses and decoding (chapters 4-5):

* :mod:`colorlab.encode`: sparse soft-encoding of ab targets (Eq. 2's Z).
* :mod:`colorlab.prior`: empirical priors and class-rebalancing weights.
* :mod:`colorlab.losses`: L2 (Eq. 1) and rebalanced cross-entropy (Eq. 2).
* :mod:`colorlab.decode`: annealed mean (Eq. 3), mean, mode and the default temperature.

The network (chapter 6):

* :mod:`colorlab.models`: the report's network, its two heads, and its layers and blocks as tables
  (shapes, parameters, receptive field).

Data (chapters 2 and 7):

* :mod:`colorlab.settings`: the COLORLAB_* settings: where data, results and caches live, and the
  book's profile.
* :mod:`colorlab.images`: image files: safe reading (EXIF, bombs, unreadable files), the decoded
  data set, deterministic splits.
* :mod:`colorlab.image_folder`: every image below a folder, decoded once and cached.
* :mod:`colorlab.data`: the book's data sets: CelebA, the fruits, the sample images, and which a
  chapter uses.
* :mod:`colorlab.transforms`: augmentation, Lab conversion and ab downsampling of batches, on the
  training device.
* :mod:`colorlab.download`: colorlab data download, checked against the book's manifests.

Training (chapter 7):

* :mod:`colorlab.config`: a run's configuration, its model, device and precision (bf16/fp16/fp32 by
  compute capability).
* :mod:`colorlab.train`: the Trainer: exact resume, best.pt, validation.
* :mod:`colorlab.run_state`: a run's model, optimizer, scheduler and random states, and its
  checkpoint.
* :mod:`colorlab.run_folder`: the files a run writes besides its checkpoint: best.pt, model.pt,
  history; never another run's.
* :mod:`colorlab.training_step`: one training step: inputs, loss, backward, Adam; compiled or
  graphed.
* :mod:`colorlab.step_graph`: a training step recorded once as a CUDA graph and replayed.
* :mod:`colorlab.checkpoint`: atomic files, checkpoints, output files checked before the work.
* :mod:`colorlab.folder_lock`: folder locks: one process per run or results folder.
* :mod:`colorlab.distributed`: several GPUs with torchrun and DDP.
* :mod:`colorlab.throughput`: FLOPs, the device's ceiling, what a reproduction costs on another
  GPU, expected multi-GPU throughput.

Evaluation (chapters 8-9):

* :mod:`colorlab.metrics`: AuC, rebalanced AuC, error curves and baselines.
* :mod:`colorlab.paired_differences`: paired differences of two methods, over images and seeds.
* :mod:`colorlab.colorfulness`: mean chroma, Hasler-Süsstrunk colourfulness, saturation histograms.
* :mod:`colorlab.evaluate`: every measure of every method on a test split, the ImageNet classifier
  test included.

The reproduction and its results (chapters 7-9):

* :mod:`colorlab.report`: the report's experiment (data sets, runs, methods), its Table 1 and ours.
* :mod:`colorlab.reproduce`: colorlab reproduce: profiles, data sets, results/.
* :mod:`colorlab.runs`: one run: train with a seed, evaluate at two points.
* :mod:`colorlab.worker_pool`: the worker processes that share a GPU (runs, benchmark processes).
* :mod:`colorlab.dataset_results`: what a finished data set's folder and the provenance hold.
* :mod:`colorlab.results_folder`: keeping finished work, never replacing a larger run.
* :mod:`colorlab.source_code`: the hash of the code that computes results; docstrings apart.
* :mod:`colorlab.results`: the recorded results a chapter shows, fetched when there is no checkout.
* :mod:`colorlab.results_fetch`: fetching results/ of the book's version from git, for readers
  without a checkout.

Figures and pages (every chapter):

* :mod:`colorlab.plots`: figures drawn from library objects.
* :mod:`colorlab.figures`: the report's figures drawn from a reproduction.
* :mod:`colorlab.failure_modes`: the measured choice of the report's example images (successes
  and five failure modes), and their panels.
* :mod:`colorlab.pages`: computed text, images and source code on the book's pages.

Command line and benchmarks (README):

* :mod:`colorlab.cli`: the colorlab command: one parser, its sub-commands, one-line errors.
* :mod:`colorlab.colorize`: colorizing image files.
* :mod:`colorlab.bench`: colorlab bench core (CPU ratios) and bench train (images/s against the
  device's ceiling).

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
