"""colorlab.throughput: FLOP counts, run-time estimates and the multi-GPU model."""
import pytest
import torch

from colorlab.models import ColorizationNet
from colorlab.throughput import (achieved_fraction, estimate_seconds, expected_throughput,
                                 forward_flops, run_flops)


def _provenance(runs: dict) -> dict:
    return {"profile": {"size": 32, "width": 0.25},
            "datasets": {"celeba": {"split_sizes": {"train": 10, "val": 4}}},
            "runs": runs, "bench_train": {"matmul_tflops": 1.0}}


def test_forward_flops_counts_every_convolution_once():
    # one 3x3 conv of C_in -> C_out channels at H x W costs 2 * 9 * C_in * C_out * H * W FLOPs
    net = ColorizationNet(width=0.125)
    dense = 0.0
    hooks = []

    def count(module, inputs, output):
        nonlocal dense
        k = module.kernel_size[0] * module.kernel_size[1]
        dense += 2 * k * module.in_channels // module.groups * output.shape[1] \
            * output.shape[2] * output.shape[3]

    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(count))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 1, 32, 32))
    for h in hooks:
        h.remove()
    assert forward_flops(net, 32) == pytest.approx(dense)


def test_seeded_runs_are_counted_with_their_own_head():
    # run names carry a seed after the loss: celeba/l2/seed1 is an L2 (regression) run too
    prov = _provenance({"celeba/l2": {"epochs": 1}, "celeba/l2/seed1": {"epochs": 1},
                        "celeba/ce/seed1": {"epochs": 1}})
    flops = run_flops(prov)
    assert flops["celeba/l2/seed1"] == flops["celeba/l2"]
    assert flops["celeba/ce/seed1"] > flops["celeba/l2"]  # 313 logits against 2 ab values


def test_estimate_and_fraction_agree():
    prov = _provenance({"celeba/ce": {"epochs": 2, "train_seconds": 1.0}})
    fraction = achieved_fraction(prov)
    trained = run_flops(prov, validation=False)["celeba/ce"]
    assert fraction == pytest.approx(trained / 1.0 / 1e12)
    # at the rate and share it was measured at, training alone takes its recorded second
    assert estimate_seconds(prov, 1e12, fraction) * trained / run_flops(prov)["celeba/ce"] \
        == pytest.approx(1.0)


def test_expected_throughput_bounds():
    r = expected_throughput(1000.0, 100, 1e9, 4, 1e10)
    assert r["worst"] <= r["best"] <= 1000.0
    assert r["node_best"] == pytest.approx(4 * r["best"])


def test_recorded_steps_are_told_apart_and_compared_one_change_at_a_time():
    """The device script's paths: 'sync' (eager, the flag read every step, as colorlab trained
    before; also every record made before the flag stayed on the device), 'eager' and
    'compiled'. Each is marked in the table, and each ratio changes one thing only."""
    from colorlab.throughput import step_of, throughput_ratios, throughput_table

    def record(processes, rate, **step):
        return {"size": 88, "processes": processes, "images_per_s": rate,
                "fraction_of_ceiling": rate / 34800, **step}

    records = {"88-p1": record(1, 5308.0, compile=False),  # an old record: no sync_search
               "88-p9-sync": record(9, 12729.0, compile=False, sync_search=True),
               "88-p9": record(9, 14000.0, compile=False, sync_search=False),
               "88-p9-compiled": record(9, 15400.0, compile=True, sync_search=False)}
    assert step_of(records["88-p1"]) == (False, True, False)
    table = throughput_table(records).splitlines()
    assert table[2:6] == ["| 88 | 1, per-step read | 5,308 | 15.3 % |",
                          "| 88 | 9, per-step read | 12,729 | 36.6 % |",
                          "| 88 | 9 | 14,000 | 40.2 % |",
                          "| 88 | 9, compiled | 15,400 | 44.3 % |"]
    assert "per-step read*: the step read" in table[-1]
    found = {(c["what"], c["processes"]): round(c["ratio"], 4) for c in throughput_ratios(records)}
    assert found == {("flag kept", 9): round(14000 / 12729, 4), ("compile", 9): 1.1}
    assert "per-step read" not in throughput_table({"x": records["88-p9"]})


def test_a_later_record_of_the_same_step_replaces_an_older_one():
    """A record made before the flag stayed on the device (no ``sync_search``) and a later
    ``--sync-search`` one measure the same step: the table shows one row, the later one."""
    from colorlab.throughput import throughput_ratios, throughput_table

    old = {"size": 88, "processes": 1, "compile": False, "images_per_s": 5308.0,
           "fraction_of_ceiling": 0.154}
    records = {"88-p1": {**old, "sync_search": False, "images_per_s": 6000.0},
               "88-p1-old": old,
               "88-p1-sync": {**old, "sync_search": True, "images_per_s": 5400.0}}
    rows = [line for line in throughput_table(records).splitlines() if line.startswith("| 88")]
    assert rows == ["| 88 | 1, per-step read | 5,400 | 15.4 % |", "| 88 | 1 | 6,000 | 15.4 % |"]
    [ratio] = throughput_ratios(records)
    assert ratio["what"] == "flag kept" and ratio["ratio"] == 6000 / 5400


def test_a_cuda_graph_is_its_own_step_compared_with_the_same_step_launched_kernel_by_kernel():
    from colorlab.bench import format_train_bench
    from colorlab.throughput import step_of, throughput_ratios, throughput_table

    base = {"size": 88, "processes": 9, "compile": False, "sync_search": False,
            "images_per_s": 14000.0, "fraction_of_ceiling": 0.40}
    records = {"88-p9": base,
               "88-p9-graphs": {**base, "cuda_graph": True, "images_per_s": 21000.0,
                                "fraction_of_ceiling": 0.60},
               "88-p9-compiled-graphs": {**base, "compile": True, "cuda_graph": True,
                                         "images_per_s": 22000.0, "fraction_of_ceiling": 0.63}}
    assert step_of(records["88-p9-graphs"]) == (False, False, True)
    rows = [line for line in throughput_table(records).splitlines() if line.startswith("| 88")]
    assert rows == ["| 88 | 9 | 14,000 | 40.0 % |", "| 88 | 9, CUDA graph | 21,000 | 60.0 % |",
                    "| 88 | 9, compiled, CUDA graph | 22,000 | 63.0 % |"]
    found = {(c["what"], c["new"]["compile"]): c["ratio"] for c in throughput_ratios(records)}
    # compiled without a graph is not measured: compile is compared with graphs on both sides
    assert found == {("CUDA graph", False): 1.5, ("compile", True): 22000 / 21000}
    text = format_train_bench({**records["88-p9-graphs"], "device": "GPU", "width": 1.0,
                               "batch": 64, "precision": "bf16", "steps": 20,
                               "images_per_s_windows": [21000.0], "ceiling_images_per_s": 35000.0,
                               "matmul_tflops": 790.0, "gflop_per_image": 22.8})
    assert "torch.compile False, CUDA graph\n" in text
