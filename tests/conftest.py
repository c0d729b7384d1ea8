import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=devices)
def device(request):
    return torch.device(request.param)


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same global RNG state: no test depends on luck."""
    torch.manual_seed(0)


class StopTraining(Exception):
    """What :func:`stop_after`'s callback raises: a run killed after an epoch."""


def stop_after(epochs: int):
    """A Trainer callback that stops training once ``epochs`` epochs and their checkpoint are
    written (``callback("epoch", epoch, steps)`` comes after the checkpoint)."""
    def callback(event, epoch, step):
        if event == "epoch" and epoch + 1 == epochs:
            raise StopTraining
    return callback
