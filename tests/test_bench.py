"""``colorlab bench train``: the median of several timed windows, and how it is printed."""
import statistics

import pytest

from colorlab.bench import main as bench
from colorlab.bench import bench_train, format_train_bench


def test_rate_is_the_median_of_the_timed_windows():
    r = bench_train(batch=2, size=32, steps=1, width=0.125, device="cpu", warmup=1, repeats=3)
    assert len(r["images_per_s_windows"]) == 3 and all(w > 0 for w in r["images_per_s_windows"])
    assert r["images_per_s"] == statistics.median(r["images_per_s_windows"])
    assert r["fraction_of_ceiling"] * r["ceiling_images_per_s"] == pytest.approx(r["images_per_s"])
    text = format_train_bench(r)
    assert "median of 3 windows of 1 steps" in text
    assert f"{min(r['images_per_s_windows']):.1f} to {max(r['images_per_s_windows']):.1f}" in text


def test_a_single_window_record_still_prints():
    """Records made before the median (results/ of an earlier run) have no windows."""
    r = bench_train(batch=2, size=32, steps=1, width=0.125, device="cpu", warmup=0, repeats=1)
    del r["images_per_s_windows"]
    assert "(1 timed steps)" in format_train_bench(r)


def test_cli_passes_repeats(capsys):
    assert bench(["train", "--batch", "2", "--size", "32", "--steps", "1", "--width", "0.125",
                  "--device", "cpu", "--repeats", "2"]) == 0
    assert "median of 2 windows" in capsys.readouterr().out


def test_sync_search_measures_the_step_that_reads_the_flag_every_time(monkeypatch):
    """``--sync-search`` is the step as colorlab trained before: on an accelerator it reads the
    search's exactness flag back at every step; the default reads the flags once per window."""
    import colorlab.bin_search as bin_search
    from test_train_fast_path import HostReads

    monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
    steps, repeats = 3, 2
    reads, records = {}, {}
    for sync in (False, True):
        with HostReads() as mode:
            records[sync] = bench_train(batch=2, size=16, steps=steps, width=0.0625,
                                        device="cpu", warmup=0, repeats=repeats,
                                        sync_search=sync)
        reads[sync] = sum(1 for name, shape in mode.reads if name == "_local_scalar_dense"
                          and shape == ())
    assert records[True]["sync_search"] and not records[False]["sync_search"]
    assert "flag read every step" in format_train_bench(records[True])
    assert "flag read" not in format_train_bench(records[False])
    assert reads[True] - reads[False] == steps * repeats - repeats  # a read per step, not window
