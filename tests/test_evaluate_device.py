"""evaluate_predictions on a device: the same metrics as on the CPU (issue 15: the evaluation of
18 runs must not hold up a GPU reproduction)."""
import pytest
import torch

from colorlab.data import SampleImages
from colorlab.evaluate import baseline_predictions, evaluate_predictions, load_classifier

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES + ([] if torch.cuda.is_available() else [
    pytest.param("cuda", marks=pytest.mark.skip(reason="no CUDA device here"))]))
def test_metrics_on_a_device_equal_the_cpu_ones(device):
    ds = SampleImages(size=24, n=12)
    predictions = baseline_predictions(ds, ds)
    gen = torch.Generator().manual_seed(0)
    predictions["noisy"] = predictions["Random"] + torch.randn(predictions["Random"].shape,
                                                               generator=gen)
    prior = torch.full((313,), 1 / 313, dtype=torch.float64)
    clf = load_classifier()
    on_cpu = evaluate_predictions(ds, predictions, prior, clf)
    on_device = evaluate_predictions(ds, predictions, prior, load_classifier(device=device),
                                     device=device)
    assert on_cpu.keys() == on_device.keys()
    for method, entry in on_cpu.items():
        for key, value in entry.items():
            assert on_device[method][key] == pytest.approx(value, abs=1e-4), (method, key)
