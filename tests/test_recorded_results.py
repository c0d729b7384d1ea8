"""The committed ``results/``: the recorded GPU run the book shows (issue 5).

These tests read only the committed files. They check that the folder is one complete full-profile
run on a GPU, that Table 1 is derived from the metrics and not typed in, and that every file the
chapters open exists and stays small (``recorded_checks.py``, which a dry run landed by
``scripts/device/land.py`` passes too).
"""
import pytest

from recorded_checks import (REQUIRED_BENCHMARKS, check_benchmark, check_dataset,
                             check_provenance, check_small, check_table1)
from colorlab.reproduce import PROFILES
from colorlab.results import book_examples, recorded_results
from colorlab.settings import results_root
from colorlab.report import DATASETS

ROOT = results_root()
FULL = PROFILES["full"]


@pytest.fixture(scope="module")
def results():
    recorded = recorded_results(ROOT)
    assert recorded is not None, f"{ROOT} holds no recorded full-profile run"
    return recorded


def test_provenance_describes_one_complete_gpu_run(results):
    check_provenance(results, FULL)
    assert not results.provenance["device"].startswith("CPU")  # a card's name (device_name)


def test_the_recorded_benchmark_compares_one_process_with_several(results):
    names = results.benchmarks()
    assert set(REQUIRED_BENCHMARKS["full"]) <= set(names)
    for name in names:
        check_benchmark(results, name, FULL.bench_width)


@pytest.mark.parametrize("dataset", DATASETS)
def test_each_dataset_has_what_the_chapters_read(results, dataset):
    check_dataset(results, dataset, FULL)
    examples, label = book_examples(dataset)
    assert "recorded run" in label and examples["logits"].shape[1] == 313


def test_table1_is_derived_from_the_recorded_metrics(results):
    check_table1(results, FULL)


def test_recorded_files_are_small():
    check_small(ROOT)
