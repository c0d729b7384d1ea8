"""Evaluate colorizations of a test split: Table 1 and Fig. 5 of the report
(defined in ``book/08_evaluation.ipynb``).

Methods are compared on the dataset's full resolution: Gray (a = b = 0), Random (the ab of a random
training image), and trained models (ab predicted at 1/4 resolution and upsampled).
"""
from __future__ import annotations

import torch

from ._validation import check_device, check_images, check_positive_int, check_tensor
from .batches import to_lab
from .classifier import FRUIT_IMAGENET_CLASSES, ImageNetClassifier, predict_top1
from .color import lab_to_rgb
from .decode import DEFAULT_T
from .colorfulness import hasler_susstrunk, mean_chroma, saturation_histogram
from .data import ColorizationDataset
from .metrics import error_scores, gray_ab, pixel_rebalance_weights, random_ab
from .models import ColorizationNet
from .precision import autocast, resolve_precision

__all__ = ["predict_ab", "baseline_predictions", "evaluate_predictions", "imagenet_labels",
           "SAMPLE_IMAGENET_CLASSES"]

#: sample-image sources with an ImageNet class (chelsea: "Egyptian cat", coffee: "espresso")
SAMPLE_IMAGENET_CLASSES = {"chelsea": 285, "coffee": 967}


@torch.no_grad()
def predict_ab(model: ColorizationNet, images: torch.Tensor, T: float = DEFAULT_T,
               batch_size: int = 64, device: torch.device | str | None = None,
               precision: str = "auto") -> torch.Tensor:
    """ab predicted by ``model`` for uint8 images ``(N, 3, S, S)``: ``(N, 2, S, S)`` float32, CPU.

    The network runs in ``precision`` (:func:`colorlab.precision.resolve_precision`: ``"auto"``
    is bf16 on Ampere and newer GPUs, fp16 on older ones, float32 on the CPU).

    >>> net = ColorizationNet(width=0.0625)
    >>> predict_ab(net, torch.zeros(3, 3, 16, 16, dtype=torch.uint8)).shape
    torch.Size([3, 2, 16, 16])
    """
    check_images(images)
    batch_size = check_positive_int(batch_size, "batch_size")
    device = check_device(device) if device is not None else next(model.parameters()).device
    out, precision = [], resolve_precision(precision, device)
    for chunk in images.split(batch_size):
        L, _ = to_lab(chunk.to(device))
        with autocast(device, precision):
            ab = model.colorize(L, T=T)
        out.append(ab.float().cpu())
    return torch.cat(out)


def baseline_predictions(test_set: ColorizationDataset, train_set: ColorizationDataset,
                         seed: int = 0) -> dict[str, torch.Tensor]:
    """The Gray and Random baselines for ``test_set`` (Random draws from ``train_set``).

    >>> from colorlab.data import SampleImages
    >>> ds = SampleImages(size=16, n=10)
    >>> {k: tuple(v.shape) for k, v in baseline_predictions(ds, ds).items()}
    {'Gray': (10, 2, 16, 16), 'Random': (10, 2, 16, 16)}
    """
    _, true_ab = to_lab(test_set.images)
    _, pool = to_lab(train_set.images)
    return {"Gray": gray_ab(true_ab),
            "Random": random_ab(true_ab, pool, torch.Generator().manual_seed(seed))}


def imagenet_labels(dataset: ColorizationDataset) -> torch.Tensor | None:
    """ImageNet class of each image where its class has one (-1 elsewhere); None if no class does."""
    table = {**SAMPLE_IMAGENET_CLASSES, **FRUIT_IMAGENET_CLASSES}
    ids = [table.get(c, -1) for c in dataset.classes]
    if not dataset.classes or all(i < 0 for i in ids):
        return None
    lookup = torch.tensor(ids + [-1])
    return lookup[dataset.labels.clamp(min=-1)]  # label -1 (no class) maps to the trailing -1


def evaluate_predictions(test_set: ColorizationDataset, predictions: dict[str, torch.Tensor],
                         prior: torch.Tensor, classifier: ImageNetClassifier | None = None,
                         device: torch.device | str | None = None) -> dict[str, dict]:
    """Metrics of every method on ``test_set``, computed on ``device`` (default: the CPU; a GPU
    makes the error curves and colour measures of a 1,440-image split take a fraction of a
    second instead of seconds per method).

    Returns ``{method: {...}}`` with ``auc`` and ``rebalanced_auc`` (mean over images, in %),
    ``per_image_auc`` (list), ``cumulative_per_pixel`` / ``cumulative_per_image`` (thresholds
    0..150), and, with a classifier, ``classifier_accuracy`` (top-1 %, on images whose class has
    an ImageNet counterpart) or ``agreement`` (% of images whose top-1 class matches the one of the
    true colour image, for unlabeled sets). Every method also gets ``mean_chroma`` (Lab units),
    ``colourfulness`` (Hasler-Süsstrunk) and a 20-bin ``saturation_histogram``
    (:mod:`colorlab.colorfulness`). A ``"Ground truth"`` entry carries the same measures, and the
    classifier figures, of the real colour images.

    >>> from colorlab.data import SampleImages
    >>> ds = SampleImages(size=16, n=10)
    >>> m = evaluate_predictions(ds, baseline_predictions(ds, ds), torch.full((313,), 1 / 313))
    >>> sorted(m), 0 < m["Gray"]["auc"] <= 100, m["Gray"]["mean_chroma"]
    (['Gray', 'Ground truth', 'Random'], True, 0.0)
    """
    device = check_device(device) if device is not None else torch.device("cpu")
    images = test_set.images.to(device)
    L, true_ab = to_lab(images)
    pixel_weights = pixel_rebalance_weights(true_ab, prior)  # the same for every method
    results: dict[str, dict] = {}
    labels = imagenet_labels(test_set)
    keep = (labels >= 0) if labels is not None else None
    truth_top1 = None
    if classifier is not None:
        truth_rgb = images.float() / 255.0
        if keep is not None and bool(keep.any()):
            truth_top1 = predict_top1(truth_rgb[keep.to(device)], classifier)
            results["Ground truth"] = {"classifier_accuracy": 100 * float(
                (truth_top1 == labels[keep]).double().mean()), "classified_images": int(keep.sum())}
        elif keep is None:
            truth_top1 = predict_top1(truth_rgb, classifier)
            results["Ground truth"] = {"agreement": 100.0, "classified_images": len(truth_rgb)}
    for name, ab in predictions.items():
        check_tensor(ab, f"predictions[{name!r}]")
        ab = ab.to(device)
        if ab.shape != true_ab.shape:
            raise ValueError(f"predictions[{name!r}] has shape {tuple(ab.shape)}, expected "
                             f"{tuple(true_ab.shape)}")
        try:
            scores = error_scores(ab, true_ab, pixel_weights)
        except (TypeError, ValueError) as err:
            raise type(err)(f"predictions[{name!r}]: {err}") from err
        entry = {"auc": 100 * float(scores["auc"].mean()),
                 "rebalanced_auc": 100 * float(scores["rebalanced_auc"].mean()),
                 "per_image_auc": scores["auc"].tolist(),
                 "cumulative_per_pixel": scores["cumulative_per_pixel"].tolist(),
                 "cumulative_per_image": scores["cumulative_per_image"].tolist()}
        rgb = lab_to_rgb(torch.cat([L, ab.to(L.dtype)], dim=1))
        entry.update(_colourfulness(ab, rgb))
        if classifier is not None and truth_top1 is not None:
            if keep is not None:
                top1 = predict_top1(rgb[keep.to(device)], classifier)
                entry["classifier_accuracy"] = 100 * float((top1 == labels[keep]).double().mean())
            else:
                top1 = predict_top1(rgb, classifier)
                entry["agreement"] = 100 * float((top1 == truth_top1).double().mean())
        results[name] = entry
    truth = _colourfulness(true_ab, images.float() / 255.0)
    results["Ground truth"] = {**results.get("Ground truth", {}), **truth}
    return results


def _colourfulness(ab: torch.Tensor, rgb: torch.Tensor) -> dict:
    """Mean chroma and Hasler-Süsstrunk colourfulness (means over the images) and the saturation
    histogram (20 bins) of one method's colorizations (:mod:`colorlab.colorfulness`)."""
    return {"mean_chroma": float(mean_chroma(ab).mean()),
            "colourfulness": float(hasler_susstrunk(rgb).mean()),
            "saturation_histogram": saturation_histogram(rgb, bins=20).tolist()}
