# colab: gpu
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
# the 91.4 GFLOP one trained image costs (three times the 30.45 GFLOP forward pass).

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
# run did (from the results' provenance). The first epoch of a compiled run includes the
# compilation, so the throughput over all epochs is below the steady state of the median epoch.

# %%
lines = ["| run | epochs | batch | learning rate | training time (s) | images/s (all epochs) "
         "| images/s (median epoch) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for name, run in results.provenance["runs"].items():
    cfg = run["config"]
    lines.append(f"| {name} | {run['epochs']} | {cfg['batch_size']} | {cfg['lr']:.2e} | "
                 f"{run['train_seconds']:.1f} | {run['images_per_s']:.0f} | "
                 f"{run['median_epoch_images_per_s']:.0f} |")
display(Markdown("\n".join(lines)))
print(f"device: {results.provenance['device']}; wall time of the whole reproduction "
      f"{results.provenance['wall_seconds']:.0f} s in {results.provenance['calls']} call(s)")

# %% [markdown]
# ## Loss curves
#
# {numref}`fig-loss-curves` shows the training and validation loss per epoch (the report's Fig. 4).

# %% [figure fig-loss-curves] Training and validation loss per epoch of the three models on the faces (top) and the fruits (bottom) (report Fig. 4).
import matplotlib.pyplot as plt

from colorlab.report_figures import plot_loss_curves

fig, axes = plt.subplots(2, 3, figsize=(11, 6))
for row, dataset in zip(axes, ("celeba", "fruits")):
    plot_loss_curves(results.path, dataset, axes=row)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Overfitting
#
# The validation loss does not fall for 100 epochs. For each run, the table gives the epoch with the
# lowest validation loss and how far above that minimum the validation loss ends.

# %%
from colorlab.table1 import RUNS

lines = ["| run | lowest validation loss | at epoch | after the last epoch | above the minimum |",
         "| --- | ---: | ---: | ---: | ---: |"]
for dataset in ("celeba", "fruits"):
    for run, method in RUNS.items():
        history = results.json(dataset, run, "history.json")
        best = min(history, key=lambda h: h["val_loss"])
        last = history[-1]["val_loss"]
        lines.append(f"| {dataset} {method} | {best['val_loss']:.3f} | {best['epoch']} | "
                     f"{last:.3f} | {100 * (last / best['val_loss'] - 1):.0f} % |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# In the recorded run (the label above), the validation loss of every classification model is
# lowest between epochs 18 and 33 and then rises, while the training loss keeps falling: the
# network has 24.8 million parameters and sees 4,320 training faces or 1,919 training fruit images.
# Class+rebal on the faces overfits most: its validation loss ends 27 % above its minimum.
# A likely reason: its weights (`prior.json`) count a pixel of a rare face colour up to 58 times
# as much as one of the commonest (8.5 against 0.15), so a few training pixels steer much of the
# gradient. Chapter {doc}`08_evaluation` evaluates the models after epoch 100, the end of the
# report's schedule, and not at the epoch with the lowest validation loss. How much an earlier
# model would score has not been measured.

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

# %% [markdown]
# ## On Colab's free GPU
#
# Colab's free GPU is an NVIDIA T4 (compute capability 7.5). It has float16 tensor cores but no
# native bfloat16, so `precision="auto"` (`colorlab.precision`, also `--precision` on the command
# line) trains there in float16 autocast with a gradient scaler: the loss is multiplied by a
# scale $s$ before the backward pass so that small float16 gradients do not underflow, the
# gradients are divided by $s$ before the update, and a step whose gradients overflow is skipped
# while $s$ is halved. On compute capability 8.0 and newer (A100, H100) it is bfloat16, and
# float32 on a CPU. The choice follows the compute capability: `torch.cuda.is_bf16_supported()`
# answers True on a T4 too, because it counts bfloat16 *emulation*, which runs without tensor
# cores.
#
# Nobody has timed the full profile on a T4 yet, so the cell below **estimates** it from the
# FLOP count of the recorded run (`colorlab.estimate`): every trained image costs three forward
# passes and every validation image one, and the T4 is assumed to reach the same share of its
# datasheet rate as the recorded runs reached of their card's measured matmul rate (a lower
# bound) or as the recorded 176x176 benchmark did (an upper bound).

# %%
from colorlab.estimate import T4, achieved_fraction, estimate_seconds, run_flops

prov = results.provenance
if results.recorded and "bench_train" in prov:
    flops = sum(run_flops(prov).values())
    shares = sorted([achieved_fraction(prov), prov["bench_train"]["fraction_of_ceiling"]])
    fp16 = [estimate_seconds(prov, T4["fp16"], f) / 60 for f in reversed(shares)]
    fp32 = [estimate_seconds(prov, T4["fp32"], f) / 3600 for f in reversed(shares)]
    display(Markdown(
        f"**Estimate, not a measurement.** The full profile trains and validates "
        f"{flops / 1e15:.1f} PFLOP. The recorded runs reached {100 * shares[0]:.0f} % of their "
        f"card's measured matmul rate, its 176x176 benchmark {100 * shares[1]:.0f} %. At those "
        f"shares of the T4's float16 tensor-core peak ({T4['fp16'] / 1e12:.0f} TFLOP/s) the six "
        f"runs take about **{fp16[0]:.0f} to {fp16[1]:.0f} minutes**; in emulated bfloat16, "
        f"which runs at about the float32 rate ({T4['fp32'] / 1e12:.1f} TFLOP/s), "
        f"{fp32[0]:.1f} to {fp32[1]:.1f} hours. The recorded run itself took "
        f"{prov['wall_seconds'] / 60:.1f} minutes on {prov['device']}. A T4 often stays below "
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
