# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     provenance: []
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# Colab: install colorlab from the repository when it is missing (a no-op locally and in CI).
import importlib.util, subprocess, sys
if importlib.util.find_spec("colorlab") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "colorlab @ git+https://github.com/colorlab-book/colorlab"])


# %% [markdown] tags=["remove-cell"]
# > **Reading this in Colab or Jupyter?** This notebook is a chapter of the colorlab book, and
# > [its page](https://colorlab-book.github.io/colorlab/book/07_training.html) shows it with its
# > figures, cross-references and numbers in place. Colab and Jupyter do not render the book's
# > MyST markup: here a cross-reference shows as a role in braces (`{numref}`, `{eq}`, `{doc}`), a
# > number that the page fills in from the computation as `{glue:text}` with the number's name,
# > and a figure as `{glue:figure}` with its name. Run the cells: the cell that computes a number
# > prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # Training
#
# The report trained three models on each data set for 100 epochs with Adam
# {cite}`kingma2015adam` (learning rate $3 \cdot 10^{-5}$, weight decay $10^{-3}$, batch 8), random
# horizontal flips and, with probability 0.2, a zoom to 110 % followed by a centre crop. Its
# pipeline converted every image to Lab with scikit-image on the CPU, built a dense 313-channel
# float64 target per image, upsampled the logits before the loss, and trained in float32. The
# pipeline of this chapter keeps the images on the training device and does all of that there, in
# batch, with sparse targets at the output resolution; the section "Throughput" below shows the rate
# it was measured at.
#
# ## A training loop you can read
#
# Everything the earlier chapters derived fits in one loop: take a batch of images, convert it to
# Lab (Chapter {doc}`02_lab_colour`), predict 313 logits per pixel from $L$ (Chapter
# {doc}`06_network`), compare them with the soft-encoded true colours at the output resolution
# ({eq}`eq-ce` and {eq}`eq-soft`, Chapter {doc}`04_regression_vs_classification`), and take a
# gradient step. The cell below trains a small network on the fruit photos (its size, set by the
# profile in its first lines, is meant for a laptop's CPU; it prints how long it took), and keeps
# four images aside to colorize before and after.

# %%
import time

import torch

from colorlab.transforms import downsample_ab, to_lab
from colorlab.losses import RebalancedCrossEntropy
from colorlab.models import ColorizationNet
from colorlab.pages import chapter_images, data_note
from colorlab.settings import profile

SIZE, WIDTH, STEPS, BATCH = (32, 0.125, 20, 8) if profile() == "ci" else (64, 0.25, 500, 16)
fruits = chapter_images("fruits", size=SIZE)
aside = torch.linspace(0, len(fruits) - 1, 4).long()  # four images spread over the classes
keep = torch.ones(len(fruits), dtype=torch.bool)
keep[aside] = False
train_images, held_out = fruits.images[keep], fruits.images[aside]
gen = torch.Generator().manual_seed(0)
torch.manual_seed(0)
net = ColorizationNet("classification", width=WIDTH)
loss_fn = RebalancedCrossEntropy()  # no weights: v = 1
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
L_held, ab_held = to_lab(held_out)
before = net.colorize(L_held).detach()  # untrained

losses, start = [], time.perf_counter()
for step in range(STEPS):
    pick = torch.randint(len(train_images), (BATCH,),
                         generator=gen)
    L, ab = to_lab(train_images[pick])  # uint8 -> Lab
    logits = net(L)                     # (B, 313, S/4, S/4)
    target = downsample_ab(ab)          # ab at S/4
    loss = loss_fn(logits, target)      # Eq. 4.3, rebalancing off
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
seconds = time.perf_counter() - start
after = net.colorize(L_held).detach()
first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
print(f"{STEPS} steps of {BATCH} images at {SIZE}x{SIZE}")
print(f"in {seconds:.0f} s; mean loss of the first 10 steps "
      f"{first:.2f}, of the last 10 {last:.2f}")

# %% tags=["remove-input"]
display_note = data_note(fruits)
if display_note:
    from IPython.display import Markdown, display

    display(Markdown(display_note))

# %% tags=["remove-input"] mystnb={"figure": {"caption": "The loss of each step of the loop above (light) and its running mean over 20 steps (dark).", "name": "fig-live-loss"}, "image": {"alt": "The loss of each step of the loop above (light) and its running mean over 20 steps (dark)."}}
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(losses, color="0.75", lw=1, label="each step")
window = min(20, len(losses))
running = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
           for i in range(len(losses))]
ax.plot(running, color="C0", lw=2, label=f"mean of {window} steps")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy")
ax.legend()
plt.tight_layout()
plt.show()

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Four held-out images: the true colours, the untrained network's colorization and the trained one's (annealed mean, T = 0.38).", "name": "fig-live-colorize"}, "image": {"alt": "Four held-out images: the true colours, the untrained network's colorization and the trained one's (annealed mean, T = 0.38)."}}
from colorlab.plots import show_colorizations

show_colorizations(L_held, {"truth": ab_held, "before": before, "after": after}, size=1.3)
plt.show()

# %% [markdown]
# ## What `Trainer` adds
#
# `colorlab.train.Trainer` runs the same step, shown here from the library's
# `colorlab.training_step.TrainingStep` (the batch's inputs and targets, the loss, the update and
# the model's part of it), and adds what a long run on a GPU needs:

# %% tags=["remove-input"]
from colorlab.pages import show_source
from colorlab.training_step import TrainingStep

show_source(TrainingStep.inputs, TrainingStep.loss, TrainingStep.update, TrainingStep.core)

# %% [markdown]
# It changes *where* the work happens, not what is computed:
#
# 1. The data set is decoded and resized **once** and kept on the GPU as `uint8` (CelebA's
#    training and validation images at 88x88 take {glue:text}`celeba-device-mb:.0f` MB).
# 2. Each step indexes a batch there, augments it (flips and zoom-crops in batch), converts it to
#    Lab (`colorlab.rgb_to_lab`) and soft-encodes the target sparsely (`colorlab.soft_encode`), all
#    on the GPU.
# 3. The loss is computed at the output resolution (Chapter {doc}`06_network`).
# 4. The forward pass runs in bfloat16 autocast with channels-last memory; Adam is fused;
#    `torch.compile` is optional.
# 5. A batch of 8 leaves a GPU idle, so the reproduction uses batch 64 with the learning rate
#    scaled by $\sqrt{64 / 8}$ (square-root scaling for Adam), recorded with every run.
# 6. Nothing is read back from the GPU within a step, so the host queues the next kernels while
#    the GPU works: the loss stays on the device (a NaN check once per epoch), and so does the
#    nearest-bin search's exactness flag, which cannot be false for sRGB targets (Chapter
#    {doc}`03_ab_gamut`) and is read once per epoch too.
# 7. Optionally (`Trainer.cuda_graphs`, `--cuda-graphs`), the model's part of the step (`core`:
#    forward, loss, backward and Adam) is recorded once as a CUDA graph and replayed: one launch
#    per step instead of one per kernel (`colorlab.step_graph`). Item 6 makes this possible: a
#    recorded step cannot wait for the host. The batch's preparation stays outside the graph,
#    because its random draws come from a CPU generator, which a graph would freeze.
#
# Checkpoints are written atomically every few epochs with the model, optimizer, RNG states and
# configuration, so an interrupted run resumes exactly where it stopped. Each epoch ends with a
# validation pass; its lowest loss decides `best.pt`, the second evaluation point of chapter 8.
# The augmentation (flips and zoom-crops) is what the report did; the loop above has none.
#
# ## Throughput
#
# `colorlab bench train` measures training images/s of the width-1 network at 176x176 through the
# trainer's own step (`Trainer.benchmark`) and compares it with the device's ceiling: its
# measured matrix-multiply rate divided by
# the {glue:text}`gflop-trained:.1f` GFLOP one trained image costs (three times the
# {glue:text}`gflop-forward:.2f` GFLOP forward pass).

# %% tags=["remove-cell"]
from colorlab.models import ColorizationNet
from colorlab.pages import glue
from colorlab.throughput import forward_flops

forward = forward_flops(ColorizationNet(), 176) / 1e9
glue("gflop-forward", forward)
glue("gflop-trained", 3 * forward)
# what the trainer keeps on the GPU for CelebA at 88x88: its training and validation images
from colorlab.download import CELEBA_COUNT
from colorlab.images import split_names

celeba_split = split_names([str(i) for i in range(CELEBA_COUNT)])
glue("celeba-device-mb", (len(celeba_split["train"]) + len(celeba_split["val"])) * 3 * 88**2 / 1e6)

# %%
from IPython.display import Markdown, display

from colorlab.results import book_results
from colorlab.bench import bench_train, format_train_bench
from colorlab.throughput import step_of

results = book_results()
display(Markdown(results.markdown()))
benchmarks = results.benchmarks()
bench = benchmarks.get("176-p1") or benchmarks.get("bench")  # one process at 176x176
if bench:
    print("Recorded:", format_train_bench(bench))
    if step_of(bench)[1]:
        print("(measured with the search's flag read at every step, as colorlab trained before "
              "item 6 above)")
else:
    print("No recorded GPU benchmark. A small configuration, measured here:")
    r = bench_train(batch=2, size=64, steps=2, width=0.25, warmup=1)
    print(format_train_bench(r))

# %% [markdown]
# ## Several runs on one GPU
#
# At 88x88 a step of 64 images is many small kernels, and one process cannot launch them fast
# enough to keep a large GPU busy: the GPU waits for the host. Independent runs (the seeds and
# configurations below) can then share the card. `colorlab reproduce` trains several runs at
# once, each an ordinary `Trainer` in its own process and run folder (`colorlab.worker_pool`), so
# checkpoints, exact resume and numbers are those of a run trained alone. Where NVIDIA's
# Multi-Process Service runs (`nvidia-cuda-mps-control -d`), the processes' kernels also execute
# at the same time instead of taking turns. `colorlab bench train --processes N` measures the
# summed rate of N such processes, started together.

# %%
from colorlab.throughput import step_of, throughput_ratios, throughput_table

rows = [b for b in benchmarks.values() if "processes" in b]
if rows:
    display(Markdown(throughput_table(benchmarks)))
    first = rows[0]
    compiled_note = "" if any(b["compile"] for b in rows) else ", without torch.compile"
    print(f"{first['device']}, width {first['width']:g}, batch {first['batch']}, "
          f"{first['precision']}{compiled_note}; median of "
          f"{len(first['images_per_s_windows'])} windows of {first['steps']} steps"
          + ("; MPS on" if any(b.get("mps") for b in rows) else ""))
    sources = results.benchmark_sources()  # rows measured in different device calls
    if sources:
        display(Markdown("\n".join(f"- {names}: {source}." for names, source in sources.items())))
else:
    print("No recorded benchmark of several processes.")

# %% tags=["remove-input"]
pairs = {}
for size in (88, 176):
    # one process against several, with the same eager step (the newest measured at both)
    for reads in (False, True):
        eager = [b for b in rows if b["size"] == size and step_of(b) == (False, reads, False)]
        one = [b for b in eager if b["processes"] == 1]
        many = [b for b in eager if b["processes"] > 1]
        if one and many:
            pairs[size] = (one[0], many[0], reads)
            break
if len(pairs) == 2:
    (one88, many88, reads88), (one176, many176, reads176) = pairs[88], pairs[176]
    display(Markdown(
        f"At 88x88, {many88['processes']} processes train "
        f"{many88['images_per_s'] / one88['images_per_s']:.2f} times as many images per second "
        f"as one and reach {100 * many88['fraction_of_ceiling']:.0f} % of the ceiling (one "
        f"process: {100 * one88['fraction_of_ceiling']:.0f} %). At 176x176 one process already "
        f"reaches {100 * one176['fraction_of_ceiling']:.0f} %, and {many176['processes']} "
        f"processes give {many176['images_per_s'] / one176['images_per_s']:.2f} times its rate, "
        f"{100 * many176['fraction_of_ceiling']:.0f} % of the ceiling. "
        + ("These rows were measured with the search's flag read back at every step, as "
           "colorlab trained before (item 6 above): each read makes the host wait for the GPU, "
           "so part of the gap to the ceiling may be that wait, which these rows cannot separate "
           "from the kernels' own time."
           if reads88 or reads176 else
           "What remains of the gap to the ceiling is the step itself, its kernels and their "
           "launches, which this measurement does not take apart.")))
ratios = throughput_ratios(benchmarks)
what_changed = {
    "compile": "With `torch.compile`, which fuses the element-wise kernels between the "
               "convolutions",
    "flag kept": "With the search's flag kept on the device instead of read at every step",
    "CUDA graph": "With the step replayed from a CUDA graph instead of launched kernel by "
                  "kernel"}
for what, opening in what_changed.items():
    found = [c for c in ratios if c["what"] == what]
    if found:
        display(Markdown(opening + ": " + "; ".join(
            f"{c['size']}x{c['size']} with "
            f"{'one process' if c['processes'] == 1 else str(c['processes']) + ' processes'}, "
            f"{c['ratio']:.2f} times the rate without it "
            f"({100 * c['new']['fraction_of_ceiling']:.0f} % of the ceiling)"
            for c in found) + "."))

# %% [markdown]
# ## The runs
#
# `colorlab reproduce` trains L2, Class and Class+rebal on each data set, each with several seeds
# (the full profile: 3; `--seeds` changes it). The table lists what each run did (from the
# results' provenance): its training time, and its throughput over all epochs and in its median
# epoch. When several runs trained at once, each run's images/s is its own share of the GPU.

# %%
lines = ["| run | epochs | batch | learning rate | time (s) | images/s, all epochs "
         "| images/s, median epoch |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
ratios = {}
for name, run in results.provenance["runs"].items():
    cfg = run["config"]
    ratios[name] = run["images_per_s"] / run["median_epoch_images_per_s"]
    lines.append(f"| {name} | {run['epochs']} | {cfg['batch_size']} | {cfg['lr']:.2e} | "
                 f"{run['train_seconds']:.1f} | {run['images_per_s']:.0f} | "
                 f"{run['median_epoch_images_per_s']:.0f} |")
display(Markdown("\n".join(lines)))
print(f"device: {results.provenance['device']}; {results.provenance.get('workers', 1)} run(s) at "
      f"a time; wall time of the whole reproduction {results.wall_seconds():.0f} s in "
      f"{results.calls()} call(s)")

# %% tags=["remove-input"]
below = sorted(n for n, r in ratios.items() if r < 1)
compiled = [n for n, run in results.provenance["runs"].items() if run.get("compiled")]
text = (f"Over all epochs, {len(below)} of the {len(ratios)} runs are slower than in their median "
        f"epoch and {len(ratios) - len(below)} faster; the two differ by "
        f"{100 * min(abs(r - 1) for r in ratios.values()):.1f}% to "
        f"{100 * max(abs(r - 1) for r in ratios.values()):.1f}%. The median epoch is the "
        f"steadier figure: a single slow or fast epoch does not move it.")
if compiled:
    text += (f" {len(compiled)} run(s) were compiled with `torch.compile`; their first epoch "
             f"includes the compilation.")
graphed = [n for n, run in results.provenance["runs"].items() if run.get("cuda_graph")]
if graphed:
    text += (f" {len(graphed)} run(s) replayed their steps from a CUDA graph; their first epoch "
             f"includes the eager warm-up steps and the recording.")
display(Markdown(text))

# %% [markdown]
# ## Loss curves
#
# {numref}`fig-loss-curves` shows the training and validation loss per epoch (the report's Fig. 4).

# %% mystnb={"figure": {"caption": "Training and validation loss per epoch of the three models (seed 0) on the faces (top) and the fruits (bottom) (report Fig. 4).", "name": "fig-loss-curves"}, "image": {"alt": "Training and validation loss per epoch of the three models (seed 0) on the faces (top) and the fruits (bottom) (report Fig. 4)."}}
import matplotlib.pyplot as plt

from colorlab.figures import plot_loss_curves

fig, axes = plt.subplots(2, 3, figsize=(9.5, 6.2))
from colorlab.report import DATASETS  # the report's two data sets

for row, dataset in zip(axes, DATASETS):
    plot_loss_curves(results.path, dataset, axes=row)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Overfitting
#
# For each configuration, the table gives seed 0's epoch with the lowest validation loss and how
# far above that minimum its validation loss ends (chapter 8 gives every seed at both points).

# %%
from colorlab.report import RUNS

lines = ["| run | lowest validation loss | at epoch | after the last epoch | above the minimum |",
         "| --- | ---: | ---: | ---: | ---: |"]
fits = {}
for dataset in DATASETS:
    for run, method in RUNS.items():
        history = results.json(dataset, run, "history.json")
        best = min(history, key=lambda h: h["val_loss"])
        last = history[-1]
        above = last["val_loss"] / best["val_loss"] - 1
        fits[dataset, run] = {"best": best, "last": last, "above": above}
        lines.append(f"| {dataset} {method} | {best['val_loss']:.3f} | {best['epoch']} | "
                     f"{last['val_loss']:.3f} | {100 * fits[dataset, run]['above']:.0f} % |")
display(Markdown("\n".join(lines)))

# %% tags=["remove-input"]
from colorlab.models import ColorizationNet

classifiers = {key: fit for key, fit in fits.items() if key[1] != "l2"}
epochs = [fit["best"]["epoch"] for fit in classifiers.values()]
last_epoch = max(fit["last"]["epoch"] for fit in fits.values())
rising = [key for key, fit in classifiers.items() if fit["above"] > 0.01]
train_falls = all(fit["last"]["train_loss"] < fit["best"]["train_loss"]
                  for fit in classifiers.values())
width = next(iter(results.provenance["runs"].values()))["config"]["width"]
params = sum(p.numel() for p in ColorizationNet("classification", width=width).parameters())
train = {ds: results.provenance["datasets"][ds]["split_sizes"]["train"]
         for ds in DATASETS}
worst = max(fits, key=lambda key: fits[key]["above"])
text = (f"In seed 0 of this run the validation loss of the classification models is lowest "
        f"between epochs "
        f"{min(epochs)} and {max(epochs)}. ")
if len(rising) == len(classifiers):
    text += "In every one it then rises"
else:
    text += f"It then rises by more than 1 % in {len(rising)} of the {len(classifiers)}"
text += (", while the training loss keeps falling" if train_falls else
         ", and the training loss does not fall in every run")
text += (f". The network has {params / 1e6:.1f} million parameters and sees "
         f"{train['celeba']:,} training faces or {train['fruits']:,} training fruit images. "
         f"{RUNS[worst[1]]} on the {'faces' if worst[0] == 'celeba' else 'fruits'} overfits most: "
         f"its validation loss ends {100 * fits[worst]['above']:.0f} % above its minimum.")
if worst[1] == "rebal":
    w = results.json(worst[0], "prior.json")["weights"]
    text += (f" A likely reason: its weights (`prior.json`) count a pixel of the rarest colour "
             f"{max(w) / min(w):.0f} times as much as one of the commonest ({max(w):.2f} against "
             f"{min(w):.2f}), so a few training pixels steer much of the gradient.")
seed_file = results.path / "table1_seeds.json"
seed_rows = results.json("table1_seeds.json") if seed_file.is_file() else {}
if all(ds in seed_rows for ds in DATASETS):
    changes = []
    for ds in DATASETS:
        auc = seed_rows[ds]["auc"]
        changes.append(f"on the {'faces' if ds == 'celeba' else 'fruits'}, " + ", ".join(
            f"{m} {auc[m]['best']['mean'] - auc[m]['final']['mean']:+.1f}" for m in RUNS.values()))
    n = results.provenance["profile"].get("seeds", 1)
    text += (f" Every run therefore keeps a second model, `best.pt`, the weights of its lowest "
             f"validation loss, and chapter 8 evaluates both. Moving from epoch {last_epoch} to "
             f"that epoch changes the mean AuC over {n} seeds (in points): " + "; ".join(changes)
             + ". A lower validation loss is not a better colorization by AuC for every "
             "model: chapter 8's section on colour shows what the early Class+rebal models do "
             "differently.")
else:
    text += (f" Chapter 8 evaluates the models after epoch {last_epoch}, the end of the "
             f"schedule; this run kept no second model at the lowest validation loss.")
display(Markdown(text))

# %% [markdown]
# ## Training it yourself
#
# On a GPU (for example Colab with a GPU runtime), set the profile to `full` and run the
# reproduction; it refuses to start on a CPU. It trains 18 runs (3 losses x 3 seeds x 2 data
# sets; `--seeds 1` trains the report's six), writes `results/` and can be interrupted and
# re-run: finished runs are skipped, an interrupted one resumes from its checkpoint. On a large
# GPU it trains up to 9 runs at once (`--workers`); on a machine with few CPU cores, one.
#
# ```bash
# export COLORLAB_DATA=/path/to/data   # celeba-7k/ (or img_align_celeba/) and fruits-10/<class>/
# colorlab reproduce --profile full --out results
# ```

# %%
from colorlab.settings import profile

if profile() == "full":
    import torch

    from colorlab.reproduce import reproduce

    if not torch.cuda.is_available():
        raise RuntimeError("COLORLAB_PROFILE=full trains 18 networks and needs a "
                           "GPU: in Colab choose Runtime > Change runtime type > GPU")
    reproduce("results", profile="full")
else:
    print("profile is not 'full': nothing is trained here")

# %% [markdown]
# ## On Colab's free GPU
#
# Colab's free GPU is an NVIDIA T4 (compute capability 7.5). It has float16 tensor cores but no
# native bfloat16, so `precision="auto"` (`colorlab.config`, also `--precision` on the command
# line) trains there in float16 autocast with a gradient scaler: the loss is multiplied by a
# scale $s$ before the backward pass so that small float16 gradients do not underflow, the
# gradients are divided by $s$ before the update, and a step whose gradients overflow is skipped
# while $s$ is halved. On compute capability 8.0 and newer (A100, H100) it is bfloat16, and
# float32 on a CPU. The choice follows the compute capability: `torch.cuda.is_bf16_supported()`
# answers True on a T4 too, because it counts bfloat16 *emulation*, which runs without tensor
# cores.
#
# Nobody has timed the full profile on a T4 yet, so the cell below **estimates** it from the
# FLOP count of the recorded run (`colorlab.throughput`): every trained image costs three forward
# passes and every validation image one, and the T4, training one run at a time, is assumed to
# reach the same share of its datasheet rate as one process reached of the recorded card's
# measured matmul rate at 88x88 (a lower bound) or at 176x176 (an upper bound).

# %%
from colorlab.throughput import T4, achieved_fraction, estimate_seconds, run_flops

prov = results.provenance
if results.recorded and "88-p1" in benchmarks and "176-p1" in benchmarks:
    shares = sorted(benchmarks[k]["fraction_of_ceiling"] for k in ("88-p1", "176-p1"))
elif results.recorded and "bench_train" in prov:  # a record made before those benchmarks
    shares = sorted([achieved_fraction(prov), prov["bench_train"]["fraction_of_ceiling"]])
else:
    shares = None
if shares:
    flops = sum(run_flops(prov).values())
    fp16 = [estimate_seconds(prov, T4["fp16"], f) / 60 for f in reversed(shares)]
    fp32 = [estimate_seconds(prov, T4["fp32"], f) / 3600 for f in reversed(shares)]
    display(Markdown(
        f"**Estimate, not a measurement.** The full profile trains and validates "
        f"{flops / 1e15:.1f} PFLOP in {len(prov['runs'])} runs. One process reached "
        f"{100 * shares[0]:.0f} % to {100 * shares[1]:.0f} % of the recorded card's measured "
        f"matmul rate. At those shares of the T4's float16 tensor-core peak "
        f"({T4['fp16'] / 1e12:.0f} TFLOP/s) the {len(prov['runs'])} "
        f"runs take about **{fp16[0]:.0f} to {fp16[1]:.0f} minutes** (a third of that with "
        f"`--seeds 1`); in emulated bfloat16, "
        f"which runs at about the float32 rate ({T4['fp32'] / 1e12:.1f} TFLOP/s), "
        f"{fp32[0]:.1f} to {fp32[1]:.1f} hours. The recorded run itself took "
        f"{results.wall_seconds() / 60:.1f} minutes on {prov['device']}. A T4 often stays below "
        f"its datasheet peak (it is limited to 70 W), so a measured time may well be longer; "
        f"`colorlab bench train` on the T4 measures its rate."))
else:
    print("No recorded GPU run with a benchmark here: nothing to estimate from.")

# %% [markdown]
# ### Keeping work across Colab sessions
#
# A Colab session ends after a few idle minutes or some hours, and its disk goes with it. Keep the
# data, the checkpoints (`--work-dir`) and the results (`--out`) on Google Drive: a re-run of the
# same command in a new session then resumes. Finished runs are skipped, an interrupted run
# continues from its last checkpoint (the full profile writes one every 10 epochs), and a data set
# that an earlier session finished is kept.
#
# ```python
# from google.colab import drive
# drive.mount("/content/drive")
# ```
#
# ```bash
# !colorlab data download celeba --root /content/drive/MyDrive/colorlab/data
# !colorlab data download fruits --root /content/drive/MyDrive/colorlab/data
# !COLORLAB_DATA=/content/drive/MyDrive/colorlab/data colorlab reproduce --profile full \
#     --out /content/drive/MyDrive/colorlab/results --work-dir /content/drive/MyDrive/colorlab/runs
# ```

# %% [markdown]
# ## Scaling up: several GPUs
#
# The trainer keeps the whole training set on one GPU as `uint8`, which limits it to what one card
# holds (the arithmetic is below); Zhang et al. trained on ImageNet. `colorlab train`,
# `colorlab reproduce` and `colorlab bench train` also run under `torchrun`, PyTorch's launcher,
# and then train **one** model with PyTorch's `DistributedDataParallel` (DDP), one process (rank)
# per GPU (`colorlab.distributed`):
#
# * each rank keeps only its **shard** of the training set on its GPU: rank $r$ of $W$ holds
#   training images $r, r + W, r + 2W, \dots$, $\lfloor n / W \rfloor$ of them, so every rank
#   takes the same number of steps;
# * `--batch-size` is per rank: the effective batch is $W$ times larger, and the default learning
#   rate is scaled for it ($3 \cdot 10^{-5} \sqrt{W \cdot \text{batch} / 8}$); `world_size`, the
#   effective batch and the learning rate are recorded in `history.json` and `model.pt`
#   (`colorlab reproduce` instead shares the profile's batch of 64 out over the ranks, so the
#   report's recipe is unchanged);
# * DDP averages the gradients over the ranks with an all-reduce during the backward pass, so all
#   ranks apply the same update and hold the same weights;
# * BatchNorm keeps **per-rank statistics**: each rank normalises with the statistics of its own
#   batch, as the single-GPU run does, and rank 0's running averages are copied to every rank.
#   SyncBatchNorm would average the batch statistics over the ranks at the cost of one all-reduce
#   per BatchNorm layer and step; with 8 or more images per rank (the report used 8) it is not
#   needed;
# * rank 0 alone prints and writes the checkpoints, atomically. A checkpoint holds every rank's
#   random state, so a run resumes exactly with the same number of processes; another number is
#   an error that says which one to use;
# * validation is shared out in the chunks one process uses and summed in the same order: the
#   validation loss, and `colorlab evaluate`'s predictions under `torchrun`, equal those of one
#   process bit for bit (on the CPU; on GPUs up to cuDNN's choice of algorithms). The test suite checks this, and identical weights on both ranks, with two
#   CPU processes on the gloo backend.
#
# On one node with 8 GPUs, an ImageNet-style folder (`train/<class>/<image>.JPEG`, split 60/20/20
# by file name like every data set here):
#
# ```bash
# torchrun --standalone --nproc_per_node 8 -m colorlab train --images /data/imagenet/train \
#     --size 176 --batch-size 128 --loss rebal --epochs 20 --run-dir runs/imagenet
# torchrun --standalone --nproc_per_node 8 -m colorlab reproduce --profile full  # all 18 runs
# torchrun --standalone --nproc_per_node 8 -m colorlab bench train   # images/s per GPU with DDP
# ```
#
# An interrupted run resumes with the same command. On a CPU the same code runs with
# `--device cpu` (gloo instead of NCCL); `torchrun --nproc_per_node 1` trains exactly as without
# `torchrun`.
#
# ### Memory: the shards
#
# A shard takes $3 S^2$ bytes per image of $S \times S$ pixels.

# %%
from colorlab.models import ColorizationNet
from colorlab.throughput import IMAGENET_TRAIN_IMAGES, shard_bytes

CARD_GB = 80  # an H100's memory, as its name says (NVIDIA H100 80GB)
lines = ["| GPUs | images per GPU | shard at 88x88 (GB) | shard at 176x176 (GB) "
         "| of an 80 GB card at 176x176 |", "| ---: | ---: | ---: | ---: | ---: |"]
for world in (1, 2, 4, 8):
    gb88, gb176 = (shard_bytes(IMAGENET_TRAIN_IMAGES, s, world) / 1e9 for s in (88, 176))
    lines.append(f"| {world} | {IMAGENET_TRAIN_IMAGES // world:,} | {gb88:.1f} | {gb176:.1f} | "
                 f"{100 * gb176 / CARD_GB:.0f} % |")
display(Markdown("\n".join(lines)))
n_params = sum(p.numel() for p in ColorizationNet().parameters())
glue("imagenet_gb", shard_bytes(IMAGENET_TRAIN_IMAGES, 176) / 1e9)
glue("imagenet_gb_8", shard_bytes(IMAGENET_TRAIN_IMAGES, 176, 8) / 1e9)
glue("imagenet_gb_88", shard_bytes(IMAGENET_TRAIN_IMAGES, 88) / 1e9)
glue("model_state_gb", 16 * n_params / 1e9)

# %% [markdown]
# ImageNet's training set at 176x176 takes {glue:text}`imagenet_gb:.0f` GB: more than one card
# holds, but {glue:text}`imagenet_gb_8:.1f` GB per GPU on 8 GPUs. At 88x88 it is
# {glue:text}`imagenet_gb_88:.0f` GB. Every GPU also holds the weights,
# their gradients and Adam's two moments (16 bytes per parameter:
# {glue:text}`model_state_gb:.2f` GB, the same on every rank) and the activations of its batch,
# which do not shrink with more GPUs. The host is another matter: each process decodes the whole
# folder into its own memory (rank 0 first, into `$COLORLAB_CACHE`; the others read that cache)
# before it moves its shard to its GPU, so the node needs the full set's size in RAM once per
# process.
#
# ### Throughput per GPU
#
# A step on one GPU takes $t = B / R$ for a batch of $B$ images at the measured $R$ images/s. DDP
# adds an all-reduce of the float32 gradients, $G$ bytes, in which each GPU sends and receives
# $2 \frac{W-1}{W} G$ bytes: $a = 2 \frac{W-1}{W} G / \beta$ at a bus bandwidth $\beta$. DDP
# overlaps it with the backward pass, so a step takes between $\max(t, a)$ and $t + a$, and each
# GPU trains between $B / (t + a)$ and $B / \max(t, a)$ images/s. The table starts from the
# single-GPU benchmark above (one process at 176x176); the bandwidths are assumptions for the
# two common kinds of node, not measurements.

# %%
from colorlab.throughput import expected_throughput, gradient_bytes

single = bench or r
grad = gradient_bytes(ColorizationNet(width=single["width"]))
LINKS = {"NVLink (assumed 400 GB/s)": 400e9, "PCIe (assumed 25 GB/s)": 25e9}
lines = ["| GPUs | link | effective batch | step (ms) | all-reduce (ms) | images/s per GPU "
         "| images/s per node |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
expected = {}
for link, bandwidth in LINKS.items():
    for world in (2, 4, 8):
        e = expected_throughput(single["images_per_s"], single["batch"], grad, world, bandwidth)
        expected[link, world] = e
        lines.append(f"| {world} | {link} | {e['effective_batch']} | {1e3 * e['step_s']:.1f} | "
                     f"{1e3 * e['allreduce_s']:.1f} | {e['worst']:,.0f} to {e['best']:,.0f} | "
                     f"{e['node_worst']:,.0f} to {e['node_best']:,.0f} |")
display(Markdown("\n".join(lines)))
nvlink, pcie = expected[next(iter(LINKS)), 8], expected[list(LINKS)[1], 8]
print(f"from: {single['images_per_s']:.0f} images/s on {single['device']} "
      f"(width {single['width']:g}, {single['size']}x{single['size']}, batch {single['batch']})")
glue("single_rate", single["images_per_s"])
glue("grad_mb", grad / 1e6)
glue("nvlink_worst", nvlink["worst"])
glue("nvlink_share", 100 * nvlink["worst"] / single["images_per_s"])
glue("pcie_worst", pcie["worst"])
glue("pcie_share", 100 * pcie["worst"] / single["images_per_s"])

# %% [markdown]
# From the measured {glue:text}`single_rate:,.0f` images/s of one GPU and
# {glue:text}`grad_mb:.0f` MB of gradients per step, a GPU of an 8-GPU NVLink node should keep at
# least {glue:text}`nvlink_worst:,.0f` images/s ({glue:text}`nvlink_share:.0f` % of one GPU alone)
# even if no communication overlapped; through PCIe, as little as
# {glue:text}`pcie_worst:,.0f` ({glue:text}`pcie_share:.0f` %) unless the overlap hides it. This is
# a first-order model. `torchrun --nproc_per_node 8 -m colorlab bench train` measures the real
# figure on a node, per process with DDP.
