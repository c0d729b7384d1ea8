# %% [markdown]
# # Training
#
# The report trained three models on each data set for 100 epochs with Adam
# {cite}`kingma2015adam` (learning rate $3 \cdot 10^{-5}$, weight decay $10^{-3}$, batch 8), random
# horizontal flips and, with probability 0.2, a zoom to 110 % followed by a centre crop. Its
# pipeline converted every image to Lab with scikit-image on the CPU, built a dense 313-channel
# float64 target per image, upsampled the logits before the loss, and trained in float32: on one
# H200 that pipeline was measured (by the colorlab project, when planning this book) at 18.4
# images/s, and a GPU pipeline like the one below at 3,852 images/s.
#
# ## A pipeline that keeps the GPU busy
#
# `colorlab.train.Trainer` changes *where* the work happens, not what is computed:
#
# 1. The data set is decoded and resized **once** and kept on the GPU as `uint8`
#    (CelebA at 88x88 is 167 MB).
# 2. Each step indexes a batch there, augments it (flips and zoom-crops in batch), converts it to
#    Lab (`colorlab.rgb_to_lab`) and soft-encodes the target sparsely (`colorlab.soft_encode`), all
#    on the GPU.
# 3. The loss is computed at the output resolution (Chapter {doc}`06_network`).
# 4. The forward pass runs in bfloat16 autocast with channels-last memory; Adam is fused;
#    `torch.compile` is optional.
# 5. A batch of 8 leaves a GPU idle, so the reproduction uses batch 64 with the learning rate
#    scaled by $\sqrt{64 / 8}$ (square-root scaling for Adam), recorded with every run.
#
# Checkpoints are written atomically every few epochs with the model, optimizer, RNG states and
# configuration, so an interrupted run resumes exactly where it stopped.
#
# ## Throughput
#
# `colorlab bench train` measures training images/s of the width-1 network at 176x176 through this
# trainer and compares it with the device's ceiling: its measured matrix-multiply rate divided by
# the {glue:text}`gflop-trained:.1f` GFLOP one trained image costs (three times the
# {glue:text}`gflop-forward:.2f` GFLOP forward pass).

# %% tags=["remove-cell"]
from colorlab.models import ColorizationNet
from colorlab.pages import glue
from colorlab.train_bench import forward_flops

forward = forward_flops(ColorizationNet(), 176) / 1e9
glue("gflop-forward", forward)
glue("gflop-trained", 3 * forward)

# %%
from IPython.display import Markdown, display

from colorlab.results import book_results
from colorlab.train_bench import bench_train, format_train_bench

results = book_results()
display(Markdown(results.markdown()))
bench = results.provenance.get("bench_train")
if bench:
    print("Recorded:", format_train_bench(bench))
else:
    print("No recorded GPU benchmark. A small configuration, measured here:")
    r = bench_train(batch=2, size=64, steps=2, width=0.25, warmup=1)
    print(format_train_bench(r))

# %% [markdown]
# ## The six runs
#
# `colorlab reproduce` trains L2, Class and Class+rebal on each data set. The table lists what each
# run did (from the results' provenance): its training time, and its throughput over all epochs
# and in its median epoch.

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
print(f"device: {results.provenance['device']}; wall time of the whole reproduction "
      f"{results.provenance['wall_seconds']:.0f} s in {results.provenance['calls']} call(s)")

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
display(Markdown(text))

# %% [markdown]
# ## Loss curves
#
# {numref}`fig-loss-curves` shows the training and validation loss per epoch (the report's Fig. 4).

# %% [figure fig-loss-curves] Training and validation loss per epoch of the three models on the faces (top) and the fruits (bottom) (report Fig. 4).
import matplotlib.pyplot as plt

from colorlab.report_figures import plot_loss_curves

fig, axes = plt.subplots(2, 3, figsize=(9.5, 6.2))
for row, dataset in zip(axes, ("celeba", "fruits")):
    plot_loss_curves(results.path, dataset, axes=row)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Overfitting
#
# For each run, the table gives the epoch with the lowest validation loss and how far above that
# minimum the validation loss ends.

# %%
from colorlab.table1 import RUNS

lines = ["| run | lowest validation loss | at epoch | after the last epoch | above the minimum |",
         "| --- | ---: | ---: | ---: | ---: |"]
fits = {}
for dataset in ("celeba", "fruits"):
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
         for ds in ("celeba", "fruits")}
worst = max(fits, key=lambda key: fits[key]["above"])
text = (f"In this run the validation loss of the classification models is lowest between epochs "
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
text += (f" Chapter {{doc}}`08_evaluation` evaluates the models after epoch {last_epoch}, the end "
         f"of the schedule, and not at the epoch with the lowest validation loss. How much an "
         f"earlier model would score has not been measured.")
display(Markdown(text))

# %% [markdown]
# ## Training it yourself
#
# On a GPU (for example Colab with a GPU runtime), set the profile to `full` and run the
# reproduction; it refuses to start on a CPU. It writes `results/` and can be interrupted and
# re-run: finished runs are skipped, an interrupted one resumes from its checkpoint.
#
# ```bash
# export COLORLAB_DATA=/path/to/data   # celeba-7k/ (or img_align_celeba/) and fruits-10/<class>/
# colorlab reproduce --profile full --out results
# ```

# %%
from colorlab.paths import profile

if profile() == "full":
    import torch

    from colorlab.reproduce import reproduce

    if not torch.cuda.is_available():
        raise RuntimeError("COLORLAB_PROFILE=full trains six networks and needs a "
                           "GPU: in Colab choose Runtime > Change runtime type > GPU")
    reproduce("results", profile="full")
else:
    print("profile is not 'full': nothing is trained here")
