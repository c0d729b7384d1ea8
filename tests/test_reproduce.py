"""``colorlab reproduce --profile ci``: a complete, well-formed results folder, resumable."""
import json

import pytest
import torch

from colorlab.reproduce import PROFILES, RUNS, reproduce
from colorlab.runs import run_name
from colorlab.report import METHODS, table1_markdown

#: every run of a ci reproduction: 3 losses x 2 seeds x 2 data sets
ALL_RUNS = {run_name(d, r, s) for d in ("celeba", "fruits") for r in RUNS
            for s in range(PROFILES["ci"].seeds)}


@pytest.fixture(scope="session")
def ci_results(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    provenance = reproduce(base / "results", profile="ci", work_dir=base / "runs", progress=False,
                           log=lambda *a: None)
    return base, provenance


def test_results_folder_is_complete(ci_results):
    base, provenance = ci_results
    out = base / "results"
    assert {p.name for p in out.iterdir()} == {"celeba", "fruits", "provenance.json",
                                               "table1.json", "table1.md", "table1_seeds.json"}
    for ds in ("celeba", "fruits"):
        files = {p.name for p in (out / ds).iterdir()}
        assert {"manifest.json", "prior.json", "metrics.json", "examples.pt", "dataset.json",
                "fig3_successes.png",
                "fig6_colour_bias.png", "fig6_colour_deficiency.png",
                "fig6_inconsistent_colouring.png", "fig6_edge_pollution.png",
                "fig6_colour_bleeding.png"} <= files
        for run in RUNS:
            history = json.loads((out / ds / run / "history.json").read_text())
            assert len(history) == PROFILES["ci"].epochs
            assert all(h["train_loss"] > 0 and h["val_loss"] > 0 for h in history)
        metrics = json.loads((out / ds / "metrics.json").read_text())
        for method in METHODS:
            assert 0 <= metrics[method]["auc"] <= 100
            assert len(metrics[method]["cumulative_per_pixel"]) == 151
        assert metrics["figures"]["chosen"]["successes"]
        prior = json.loads((out / ds / "prior.json").read_text())
        assert abs(sum(prior["empirical"]) - 1) < 1e-9 and len(prior["weights"]) == 313
    table = json.loads((out / "table1.json").read_text())
    assert set(table) == {"celeba (sample stand-in)", "fruits (sample stand-in)"}
    assert "agreement" in table["celeba (sample stand-in)"]
    assert "classifier_accuracy" in table["fruits (sample stand-in)"]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["profile"]["name"] == "ci" and prov["device"] and prov["torch"]
    assert set(prov["runs"]) == ALL_RUNS
    assert all(r["images_per_s"] > 0 for r in prov["runs"].values())
    assert all(r["evaluate_seconds"] > 0 for r in prov["runs"].values())
    # where each run's wall time went besides its steps, and how its steps were launched
    assert all(0 < r["validation_seconds_this_call"] + r["checkpoint_seconds_this_call"]
               < r["wall_seconds_this_call"] and r["cuda_graph"] is False
               for r in prov["runs"].values())
    assert all(len(d["manifest_hash"]) == 64 for d in prov["datasets"].values())
    assert not [p for p in base.iterdir() if p.name.startswith(".results")]


def test_finished_runs_are_skipped_on_a_second_call(ci_results):
    base, first = ci_results
    before = json.loads((base / "results" / "table1.json").read_text())
    again = reproduce(base / "results", profile="ci", work_dir=base / "runs", progress=False,
                      classifier=None, log=lambda *a: None)
    assert all(r["resumed_complete"] for r in again["runs"].values())
    after = json.loads((base / "results" / "table1.json").read_text())
    for ds in before:
        assert after[ds]["auc"] == before[ds]["auc"]  # the same trained models, re-evaluated


def test_launching_the_steps_another_way_continues_the_same_reproduction():
    """cuda_graphs changes how steps are launched, not what they compute: it is left out of the
    record that decides whether an earlier call's finished datasets are kept, so a call that
    records graphs continues one that did not (and the other way round)."""
    import dataclasses

    graphs = dataclasses.replace(PROFILES["full"], cuda_graphs=True)
    assert graphs.record() == PROFILES["full"].record()
    assert dataclasses.replace(PROFILES["full"], epochs=50).record() != PROFILES["full"].record()


def test_full_profile_refuses_the_cpu(tmp_path):
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        reproduce(tmp_path / "r", profile="full", device="cpu")


def test_table_shows_report_numbers_only_for_real_data():
    table = {"celeba": {"auc": {m: 90.0 for m in METHODS}},
             "fruits (sample stand-in)": {"auc": {m: 80.0 for m in METHODS}}}
    text = table1_markdown(table)
    assert "90.0 (88.8)" in text and "80.0 (" not in text


def test_a_recorded_full_run_is_what_the_book_shows(ci_results, tmp_path, monkeypatch):
    """Once results/ holds a full-profile run, the chapters read it (and say where it is from)."""
    import shutil

    from colorlab.results import book_examples, book_results, recorded_results

    base, _ = ci_results
    recorded = tmp_path / "results"
    shutil.copytree(base / "results", recorded)
    prov = json.loads((recorded / "provenance.json").read_text())
    assert recorded_results(recorded) is None  # a ci-profile run is never shown as the recorded one
    prov["profile"]["name"] = "full"
    (recorded / "provenance.json").write_text(json.dumps(prov))
    monkeypatch.setenv("COLORLAB_RESULTS", str(recorded))
    shown = book_results()
    assert shown.recorded and shown.path == recorded
    assert prov["device"] in shown.label and prov["git_commit"][:10] in shown.label
    assert "Recorded run" in shown.markdown()
    examples, label = book_examples("celeba")
    assert examples["logits"].shape[1] == 313 and "recorded run" in label
    assert examples["L"].shape[0] == examples["ab"].shape[0] == len(examples["files"])


def test_reproduce_leaves_the_matplotlib_backend_alone(tmp_path):
    """A notebook that calls reproduce must still show its later plots (inline backend)."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stand-in for a notebook's inline backend
    try:
        reproduce(tmp_path / "r", profile="ci", work_dir=tmp_path / "w", progress=False,
                  classifier=None, datasets=("fruits",), epochs=1, log=lambda *a: None)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def _refuse(*args, **kwargs):
    raise AssertionError("trained, benchmarked or evaluated again")


def _no_training(monkeypatch):
    """Make any training or dataset evaluation fail loudly: what a kept result must not need."""
    import colorlab.reproduce as rep

    monkeypatch.setattr(rep, "finish_dataset", _refuse)
    monkeypatch.setattr(rep, "train_and_evaluate", _refuse)


def test_a_finished_reproduction_is_kept_by_the_same_call(ci_results, monkeypatch):
    base, _ = ci_results
    reproduce(base / "again", profile="ci", work_dir=base / "runs", progress=False,
              log=lambda *a: None)
    before = (base / "again" / "provenance.json").read_text()
    _no_training(monkeypatch)
    lines = []
    prov = reproduce(base / "again", profile="ci", work_dir=base / "runs", progress=False,
                     log=lines.append)
    assert "nothing to do" in lines[-1]
    assert (base / "again" / "provenance.json").read_text() == before
    assert prov == json.loads(before)


def test_a_call_cut_off_after_one_dataset_keeps_it_for_the_next(tmp_path, monkeypatch):
    """The GPU case: a call killed during the fruits leaves CelebA finished in the in-progress
    folder; results/ keeps its earlier content, and the next call (even without the checkpoints,
    as on a fresh machine) trains only the fruits."""
    import shutil

    import colorlab.reproduce as rep
    from colorlab.results import recorded_results

    out = tmp_path / "results"
    out.mkdir()
    (out / "provenance.json").write_text('{"profile": {"name": "earlier"}}')
    real = rep.finish_dataset
    trained = []

    def cut_off_at_fruits(ds_name, *args, **kwargs):
        trained.append(ds_name)
        if ds_name == "fruits":
            raise KeyboardInterrupt  # what a timeout's signal looks like mid-run
        return real(ds_name, *args, **kwargs)

    monkeypatch.setattr(rep, "finish_dataset", cut_off_at_fruits)
    kwargs = dict(profile="ci", progress=False, classifier=None, epochs=1, log=lambda *a: None)
    with pytest.raises(KeyboardInterrupt):
        reproduce(out, work_dir=tmp_path / "w1", bench=True, **kwargs)
    assert json.loads((out / "provenance.json").read_text()) == {"profile": {"name": "earlier"}}
    partial = tmp_path / ".results.partial"
    # the benchmark and CelebA are kept; no half-built fruits folder; the call is on record
    assert {p.name for p in partial.iterdir()} == {"bench_train.json", "celeba", "calls.json"}
    first = json.loads((partial / "calls.json").read_text())["calls"]
    assert len(first) == 1 and first[0]["finished"] == ["bench", "celeba"]
    assert recorded_results(out) is None

    shutil.rmtree(tmp_path / "w1")  # a fresh machine: no checkpoints
    monkeypatch.setattr(rep, "finish_dataset", lambda ds_name, *a, **k: (
        trained.append(ds_name), real(ds_name, *a, **k))[1])
    monkeypatch.setattr(rep, "bench_train", _refuse)  # the kept benchmark is not measured again
    prov = reproduce(out, work_dir=tmp_path / "w2", bench=True, **kwargs)
    assert trained == ["celeba", "fruits", "fruits"]
    assert set(prov["datasets"]) == {"celeba", "fruits"} and prov["calls"] == 2
    assert set(prov["runs"]) == ALL_RUNS
    assert prov["bench_train"]["size"] == PROFILES["ci"].bench_size
    assert {p.name for p in out.iterdir()} == {"celeba", "fruits", "provenance.json",
                                               "table1.json", "table1.md", "table1_seeds.json",
                                               "bench_train.json"}
    assert not partial.exists()
    records = [json.loads((out / ds / "dataset.json").read_text()) for ds in ("celeba", "fruits")]
    records.append(json.loads((out / "bench_train.json").read_text()))
    # each call lasted at least until the last item it finished (a record's wall time counts
    # from the start of its call)
    log = {c["call"]: c for c in prov["call_log"]}
    assert len(log) == 2 and [c["finished"] for c in prov["call_log"]] == [["bench", "celeba"],
                                                                          ["fruits"]]
    for r in records:
        assert log[r["call"]]["wall_seconds"] >= round(r["wall_seconds"], 1) - 0.1
    assert prov["call_wall_seconds"] == {c: e["wall_seconds"] for c, e in log.items()}
    assert prov["wall_seconds"] == pytest.approx(sum(prov["call_wall_seconds"].values()))


def test_a_call_cut_off_before_it_finished_anything_still_counts(tmp_path, monkeypatch):
    """The recorded GPU case: a call trains runs to the end and is cut off before any data set's
    folder is assembled. The next call keeps those runs (the work folder) and finishes; the
    provenance counts both calls, the first with the wall time it spent training."""
    import colorlab.reproduce as rep

    real, started = rep.train_and_evaluate, []

    def cut_off_at_the_third_run(job):
        started.append(job)
        if len(started) == 3:
            raise KeyboardInterrupt  # a timeout's SIGINT while the third run trains
        return real(job)

    monkeypatch.setattr(rep, "train_and_evaluate", cut_off_at_the_third_run)
    kwargs = dict(profile="ci", progress=False, classifier=None, epochs=1, datasets=("fruits",),
                  log=lambda *a: None, work_dir=tmp_path / "w", seeds=1)
    with pytest.raises(KeyboardInterrupt):
        reproduce(tmp_path / "results", **kwargs)
    ledger = json.loads((tmp_path / ".results.partial" / "calls.json").read_text())["calls"]
    assert len(ledger) == 1 and ledger[0]["finished"] == [] and ledger[0]["wall_seconds"] > 0
    monkeypatch.setattr(rep, "train_and_evaluate", real)
    prov = reproduce(tmp_path / "results", **kwargs)
    assert prov["calls"] == 2 and prov["call_log"][0] == ledger[0]
    assert prov["call_log"][1]["finished"] == ["fruits"]
    # the two runs of the first call were kept, not trained again
    assert sum(run["resumed_complete"] for run in prov["runs"].values()) == 2
    assert prov["wall_seconds"] == pytest.approx(sum(c["wall_seconds"] for c in ledger)
                                                 + prov["call_log"][1]["wall_seconds"])
    assert not (tmp_path / ".results.partial").exists()


def test_a_call_stopped_by_bad_input_or_with_nothing_to_do_is_not_recorded(tmp_path,
                                                                          monkeypatch):
    """Only calls that work on the reproduction count: one that stops at a missing data set,
    or finds the reproduction already complete, leaves no record and no in-progress folder."""
    import colorlab.reproduce as rep

    kwargs = dict(profile="ci", progress=False, classifier=None, epochs=1, datasets=("fruits",),
                  log=lambda *a: None, work_dir=tmp_path / "w", seeds=1)

    def missing(*args, **kwargs):
        raise FileNotFoundError("no fruits here")

    monkeypatch.setattr(rep, "profile_dataset", missing)
    with pytest.raises(FileNotFoundError):
        reproduce(tmp_path / "results", **kwargs)
    assert not (tmp_path / ".results.partial").exists()
    monkeypatch.undo()
    prov = reproduce(tmp_path / "results", **kwargs)
    assert prov["calls"] == 1
    assert reproduce(tmp_path / "results", **kwargs) == prov  # nothing to do
    assert not (tmp_path / ".results.partial").exists()


def test_other_settings_never_mix_with_kept_results(tmp_path, monkeypatch):
    """A dataset finished with other settings (here: epochs) is trained again, not kept."""
    import colorlab.reproduce as rep

    kwargs = dict(profile="ci", progress=False, classifier=None, datasets=("fruits",),
                  log=lambda *a: None)
    reproduce(tmp_path / "r", work_dir=tmp_path / "w", epochs=1, **kwargs)
    calls = []
    real = rep.finish_dataset
    monkeypatch.setattr(rep, "finish_dataset", lambda *a, **k: (calls.append(1),
                                                                     real(*a, **k))[1])
    prov = reproduce(tmp_path / "r", work_dir=tmp_path / "w2", epochs=2, **kwargs)
    assert calls == [1] and prov["profile"]["epochs"] == 2 and prov["calls"] == 1


def test_a_record_left_in_a_staging_folder_is_not_an_item(tmp_path):
    """A call killed between writing a dataset's record and renaming its staging folder leaves
    ``.staging-*/dataset.json``: it is cleaned up, never read as a finished item."""
    from colorlab.results_folder import ResultsFolder

    key = {"profile": "demo"}
    folder = ResultsFolder(tmp_path / "results", key)
    staged = folder.stage("fruits")
    (staged / "dataset.json").write_text(json.dumps({"key": key, "manifest_hash": "h"}))
    again = ResultsFolder(tmp_path / "results", key)
    assert again.staged == {} and again.kept("fruits", "h") is None
    assert not list((tmp_path / ".results.partial").iterdir())


def test_every_run_is_evaluated_at_its_last_and_best_epochs(ci_results):
    base, _ = ci_results
    for ds in ("celeba", "fruits"):
        metrics = json.loads((base / "results" / ds / "metrics.json").read_text())
        for method in RUNS.values():
            for point in ("final", "best"):
                entries = metrics["seeds"][method][point]
                assert len(entries) == PROFILES["ci"].seeds
                assert all(len(e["per_image_auc"]) == len(metrics["Gray"]["per_image_auc"])
                           for e in entries)
            final, best = metrics["seeds"][method]["final"], metrics["seeds"][method]["best"]
            assert all(f["epoch"] == PROFILES["ci"].epochs for f in final)
            # the best point is the epoch of the lowest validation loss in the run's history
            for seed, entry in enumerate(best):
                suffix = f"-seed{seed}" if seed else ""
                run = {v: k for k, v in RUNS.items()}[method]
                history = json.loads((base / "results" / ds / run / f"history{suffix}.json")
                                     .read_text())
                assert entry["epoch"] == min(history, key=lambda h: h["val_loss"])["epoch"]
                # ... and the epoch whose weights the trainer kept in best.pt
                best = base / "runs" / ds / run / f"seed{seed}" / "best.pt"
                assert torch.load(best, weights_only=True)["epoch"] == entry["epoch"]
        assert (base / "results" / ds / "fig_saturation.png").stat().st_size > 1000


def test_runs_trained_in_worker_processes_give_the_same_numbers(tmp_path):
    """Several runs at once (colorlab.runs) are each an ordinary run: same metrics."""
    kwargs = dict(profile="ci", progress=False, classifier=None, datasets=("fruits",), epochs=1,
                  log=lambda *a: None)
    reproduce(tmp_path / "one", work_dir=tmp_path / "w1", workers=1, **kwargs)
    prov = reproduce(tmp_path / "two", work_dir=tmp_path / "w2", workers=2, **kwargs)
    assert prov["workers"] == 2
    one, two = (json.loads((tmp_path / name / "fruits" / "metrics.json").read_text())
                for name in ("one", "two"))
    for method in RUNS.values():
        for point in ("final", "best"):
            for a, b in zip(one["seeds"][method][point], two["seeds"][method][point]):
                assert a["epoch"] == b["epoch"]
                assert a["auc"] == pytest.approx(b["auc"], abs=1e-3)


def test_an_evaluation_of_another_layout_is_measured_again(tmp_path):
    """A run's evaluation.json is reused only in the layout this code writes."""
    kwargs = dict(profile="ci", progress=False, classifier=None, datasets=("fruits",), epochs=1,
                  seeds=1, log=lambda *a: None)
    reproduce(tmp_path / "one", work_dir=tmp_path / "w", **kwargs)
    stale = tmp_path / "w" / "fruits" / "ce" / "seed0" / "evaluation.json"
    old = json.loads(stale.read_text())
    del old["format"]
    for entry in old["evaluation"].values():
        entry.pop("cumulative_per_pixel")
    stale.write_text(json.dumps(old))
    reproduce(tmp_path / "two", work_dir=tmp_path / "w", **kwargs)
    from colorlab.runs import EVALUATION_FORMAT

    assert json.loads(stale.read_text())["format"] == EVALUATION_FORMAT
    metrics = json.loads((tmp_path / "two" / "fruits" / "metrics.json").read_text())
    assert len(metrics["Class"]["cumulative_per_pixel"]) == 151


def test_the_book_counts_the_calls_from_the_call_log_and_from_older_records(tmp_path):
    """A provenance with a ``call_log`` counts every call itself; an older one (which counted
    only the calls that finished a data set) gives way to the device calls' record."""
    from colorlab.results import BookResults

    (tmp_path / "device").mkdir()
    (tmp_path / "device" / "calls.json").write_text(json.dumps(
        {"calls": [{"reproduce_seconds": 445}, {"reproduce_seconds": 154}]}))
    older = {"calls": 1, "wall_seconds": 154.2, "call_wall_seconds": {"b": 154.2}}
    results = BookResults(tmp_path, True, "", older)
    assert (results.calls(), results.wall_seconds()) == (2, 599.0)
    logged = {"calls": 2, "wall_seconds": 600.5, "call_wall_seconds": {"a": 446.3, "b": 154.2},
              "call_log": [{"call": "a", "wall_seconds": 446.3},
                           {"call": "b", "wall_seconds": 154.2}]}
    results = BookResults(tmp_path, True, "", {**logged, "git_commit": "abc"})
    assert (results.calls(), results.wall_seconds()) == (2, 600.5)
    assert results.commit() == "abc"  # not the older record's
    (tmp_path / "device" / "calls.json").write_text(json.dumps(
        {"calls": [{"reproduce_seconds": 445}], "git_commit": "old"}))
    assert BookResults(tmp_path, True, "", older).commit() == "old"


def test_a_call_whose_items_were_all_made_again_is_left_out(tmp_path):
    """Call A finishes CelebA, call B the fruits; the fruits' data change and call C trains them
    again: the reproduction is A's CelebA and C's fruits, so B's time is not counted."""
    from colorlab.results_folder import ResultsFolder

    key, items = {"profile": "demo"}, ["celeba", "fruits"]

    def call(name, item, manifest, finish):
        folder = ResultsFolder(tmp_path / "results", key, items)
        folder.begin_call({"call": name})
        folder.commit(item, folder.stage(item), {"manifest_hash": manifest, "call": name})
        folder.tick(item)
        calls = folder.calls(items)
        if finish:
            folder.finish(items, {"call_log": calls}, {})
        folder.end_call()
        return [c["call"] for c in calls]

    assert call("A", "celeba", "c", finish=False) == ["A"]
    assert call("B", "fruits", "f1", finish=True) == ["A", "B"]
    assert call("C", "fruits", "f2", finish=True) == ["A", "C"]
