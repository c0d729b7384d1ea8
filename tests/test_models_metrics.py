"""The network (Fig. 1), the AuC metrics and baselines, the ImageNet classifiers."""
import urllib.error

import pytest
import torch

from colorlab.evaluate import (agreement_rate, classifier_accuracy, load_classifier,
                                 predict_top1)
from colorlab.metrics import (auc, cumulative_error_per_image, cumulative_error_per_pixel,
                              error_scores, gray_ab, pixel_rebalance_weights, random_ab,
                              rebalanced_auc)
from colorlab.models import ColorizationNet
from colorlab.prior import rebalance_weights


def test_width_one_classification_net_has_the_reports_parameter_count():
    net = ColorizationNet()
    assert sum(p.numel() for p in net.parameters()) == 24_788_032
    regression = ColorizationNet("regression")
    assert sum(p.numel() for p in regression.parameters()) == 24_788_032 - 128 * 313 + 128 * 2


def test_architecture_blocks():
    net = ColorizationNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 22 + 1  # 2+2+3+3+3+3+3+3 and the head
    assert all(c.bias is not None for c in convs[:-1]) and convs[-1].bias is None
    dilated = [c for c in convs if c.dilation == (2, 2)]
    assert len(dilated) == 6 and all(c.padding == (2, 2) for c in dilated)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 8
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.1 for m in net.modules()) == 8
    assert sum(isinstance(m, torch.nn.Upsample) for m in net.modules()) == 1


@pytest.mark.parametrize("head,channels", [("classification", 313), ("regression", 2)])
def test_output_is_a_quarter_of_the_input(head, channels, device):
    net = ColorizationNet(head, width=0.125).to(device)
    out = net(torch.rand(2, 1, 48, 64, device=device) * 100)
    assert out.shape == (2, channels, 12, 16)


def test_colorize_any_size_and_keeps_mode():
    net = ColorizationNet(width=0.125).train()
    ab = net.colorize(torch.rand(1, 1, 37, 53) * 100)
    assert ab.shape == (1, 2, 37, 53) and net.training
    reg = ColorizationNet("regression", width=0.125).eval()
    assert reg.colorize(torch.rand(2, 1, 16, 16) * 100).shape == (2, 2, 16, 16)
    assert not reg.training


def test_model_bad_arguments():
    with pytest.raises(ValueError, match="head"):
        ColorizationNet("segmentation")
    with pytest.raises(ValueError, match="width"):
        ColorizationNet(width=0)
    net = ColorizationNet(width=0.125)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match="1 channels"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))


# ---------------------------------------------------------------- metrics

def brute_force_auc(pred, true, weights=None, thresholds=range(151)):
    out = []
    for i in range(pred.shape[0]):
        err = (pred[i] - true[i]).double().norm(dim=0).flatten()
        w = torch.ones_like(err) if weights is None else weights[i].flatten().double()
        fractions = [float((w * (err <= t)).sum() / w.sum()) for t in thresholds]
        out.append(sum(fractions) / len(fractions))
    return torch.tensor(out, dtype=torch.float64)


def test_auc_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    pred, true = torch.randn(3, 2, 8, 8, generator=gen) * 40, torch.randn(3, 2, 8, 8, generator=gen) * 40
    torch.testing.assert_close(auc(pred, true), brute_force_auc(pred, true))
    torch.testing.assert_close(auc(pred, true, thresholds=[0, 10, 50]),
                               brute_force_auc(pred, true, thresholds=[0, 10, 50]))
    assert ((auc(pred, true) >= 0) & (auc(pred, true) <= 1)).all()


def test_auc_threshold_edges_are_inclusive():
    true = torch.zeros(1, 2, 1, 1)
    pred = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # error exactly 5
    assert auc(pred, true, thresholds=[5]).item() == 1.0
    assert auc(pred, true, thresholds=[4.999]).item() == 0.0


def test_rebalanced_auc_weights_rare_colours():
    from colorlab.gamut import nearest_bin

    gen = torch.Generator().manual_seed(1)
    true, pred = torch.randn(2, 2, 6, 6, generator=gen) * 30, torch.randn(2, 2, 6, 6, generator=gen) * 30
    prior = torch.rand(313, generator=gen, dtype=torch.float64) + 0.01
    prior /= prior.sum()
    w = rebalance_weights(prior, 0.0)[nearest_bin(true)]
    torch.testing.assert_close(rebalanced_auc(pred, true, prior), brute_force_auc(pred, true, w))
    uniform = torch.full((313,), 1 / 313, dtype=torch.float64)
    torch.testing.assert_close(rebalanced_auc(pred, true, uniform), auc(pred, true))


def test_cumulative_curves():
    true = torch.zeros(2, 2, 2, 2)
    pred = true.clone()
    pred[0, 0, 0, 0] = 20.0  # one pixel off by 20 in image 0
    per_pixel = cumulative_error_per_pixel(pred, true, thresholds=[0, 19, 20])
    torch.testing.assert_close(per_pixel, torch.tensor([7 / 8, 7 / 8, 1.0], dtype=torch.float64))
    per_image = cumulative_error_per_image(pred, true, thresholds=[0, 5])
    torch.testing.assert_close(per_image, torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert (torch.diff(cumulative_error_per_pixel(pred * 3, true)) >= 0).all()


@pytest.mark.parametrize("head", ["classification", "regression"])
def test_the_head_stays_float32_under_autocast(head):
    """bf16 logits, divided by T = 0.38 in the annealed mean, would carry bf16 rounding into the
    colours; the blocks run in bf16, the 1x1 head in float32."""
    net = ColorizationNet(head, width=0.125).eval()
    L = torch.rand(2, 1, 32, 32) * 100
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(L)
        features = net.blocks(L / 100.0)
    assert features.dtype == torch.bfloat16 and out.dtype == torch.float32
    scale = 110.0 if head == "regression" else 1.0
    expected = net.head(features.float()) * scale
    assert torch.equal(out, expected)


def test_cumulative_curves_match_the_dense_comparison():
    """The O(N log T) counting equals mean([err <= t]) done densely, for unsorted and repeated
    thresholds and errors exactly on a threshold."""
    gen = torch.Generator().manual_seed(1)
    true = torch.zeros(3, 2, 5, 7, dtype=torch.float64)
    pred = torch.randn(3, 2, 5, 7, generator=gen, dtype=torch.float64) * 30
    pred[0, :, 0, :] = torch.tensor([3.0, 4.0], dtype=torch.float64).view(2, 1)  # error exactly 5
    thresholds = [40.0, 5.0, 0.0, 5.0, 150.0, 12.5]
    err = torch.linalg.vector_norm(pred - true, dim=1)
    t = torch.tensor(thresholds, dtype=torch.float64)
    dense = (err.reshape(-1)[None, :] <= t[:, None]).double().mean(dim=1)
    assert torch.equal(cumulative_error_per_pixel(pred, true, thresholds), dense)
    per_image = err.flatten(1).mean(dim=1)
    dense = (per_image[None, :] <= t[:, None]).double().mean(dim=1)
    assert torch.equal(cumulative_error_per_image(pred, true, thresholds), dense)


def test_error_scores_equal_the_metrics_one_by_one():
    """One error pass (and the pixel weights computed once) gives exactly what the four public
    metrics give separately."""
    gen = torch.Generator().manual_seed(2)
    true = torch.randn(3, 2, 6, 5, generator=gen) * 40
    pred = torch.randn(3, 2, 6, 5, generator=gen) * 40
    pred[0, :, 0, :] = true[0, :, 0, :] + torch.tensor([3.0, 4.0]).view(2, 1)  # on a threshold
    prior = torch.rand(313, generator=gen, dtype=torch.float64) + 0.01
    prior /= prior.sum()
    thresholds = [0, 5, 12.5, 40, 150]
    scores = error_scores(pred, true, pixel_rebalance_weights(true, prior), thresholds)
    assert torch.equal(scores["auc"], auc(pred, true, thresholds))
    assert torch.equal(scores["rebalanced_auc"], rebalanced_auc(pred, true, prior, thresholds))
    assert torch.equal(scores["cumulative_per_pixel"],
                       cumulative_error_per_pixel(pred, true, thresholds))
    assert torch.equal(scores["cumulative_per_image"],
                       cumulative_error_per_image(pred, true, thresholds))
    assert "rebalanced_auc" not in error_scores(pred, true)
    with pytest.raises(ValueError, match="pixel_rebalance_weights"):
        error_scores(pred, true, torch.ones(3, 6, 6))


def test_baselines():
    true = torch.randn(4, 2, 8, 8)
    assert (gray_ab(true) == 0).all()
    pool = torch.randn(6, 2, 16, 16)
    a = random_ab(true, pool, torch.Generator().manual_seed(0))
    b = random_ab(true, pool, torch.Generator().manual_seed(0))
    assert a.shape == true.shape and torch.equal(a, b)
    same = random_ab(torch.zeros(1, 2, 16, 16), pool[:1])
    torch.testing.assert_close(same, pool[:1])
    with pytest.raises(ValueError, match="empty"):
        random_ab(true, pool[:0])


def test_metric_bad_arguments():
    x = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="same shape"):
        auc(x, torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="thresholds"):
        auc(x, x, thresholds=[])
    with pytest.raises(ValueError, match="NaN"):
        auc(x * float("nan"), x)


# ---------------------------------------------------------------- classifiers

@pytest.fixture(scope="module")
def classifier():
    return load_classifier("efficientnet_lite0")


def skimage_image(name):
    from skimage import data

    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


def test_efficientnet_recognises_wheel_images(classifier):
    top1 = [int(predict_top1(skimage_image(name), classifier)[0]) for name in ("chelsea", "coffee")]
    assert top1 == [285, 967]  # Egyptian cat, espresso
    assert classifier_accuracy(skimage_image("chelsea"), torch.tensor([285]), classifier) == 1.0
    assert classifier_accuracy(skimage_image("chelsea"), torch.tensor([1]), classifier) == 0.0


def test_agreement_rate(classifier):
    cat, coffee = skimage_image("chelsea"), skimage_image("coffee")
    gray = cat.mean(dim=1, keepdim=True).expand_as(cat).contiguous()
    assert agreement_rate(cat, cat, classifier) == 1.0
    rate = agreement_rate(gray, cat, classifier)
    assert rate in (0.0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        agreement_rate(cat, coffee, classifier)


def test_classifier_bad_arguments(classifier):
    with pytest.raises(ValueError, match="classifier must be"):
        load_classifier("resnet")
    with pytest.raises(ValueError, match="labels"):
        classifier_accuracy(torch.rand(2, 3, 8, 8), torch.tensor([1]), classifier)
    with pytest.raises(TypeError, match="floating-point"):
        classifier(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_vgg16_without_internet_is_a_clear_error(monkeypatch, tmp_path):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="efficientnet_lite0"):
        load_classifier("vgg16")
