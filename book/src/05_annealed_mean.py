# ---
# jupyter:
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
# > [its page](https://colorlab-book.github.io/colorlab/book/05_annealed_mean.html) shows it with
# > its figures, cross-references and numbers in place. Colab and Jupyter do not render the book's
# > MyST markup: here a cross-reference shows as a role in braces (`{numref}`, `{eq}`, `{doc}`), a
# > number that the page fills in from the computation as `{glue:text}` with the number's name,
# > and a figure as `{glue:figure}` with its name. Run the cells: the cell that computes a number
# > prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # From a distribution to a colour
#
# The classifier predicts, for every pixel, a distribution $\hat Z_{h,w} \in \Delta^{313}$ over the
# $ab$ bins. An image needs one colour per pixel, $\hat Y_{h,w} = \mathcal{H}(\hat Z_{h,w})$.
Two obvious choices are said to fail in opposite ways (Zhang et al.'s argument, which this chapter tests on real
# predictions below):
#
# * the **mean** $\sum_q \hat Z_{h,w,q}\, c_q$ of the bin centres $c_q$ averages the modes, so it
#   should be desaturated, like the L2 regression of Chapter {doc}`04_regression_vs_classification`;
# * the **mode** $c_{\arg\max_q \hat Z_{h,w,q}}$ should be vivid, but it jumps between bins from
#   one pixel to the next, giving patchy, spatially inconsistent colour.
#
# Zhang et al. interpolate with the **annealed mean**: re-sharpen the distribution with a
# temperature $T$, then take its mean,
#
# $$
# \begin{aligned}
# \mathcal{H}(Z_{h,w}) &= \sum_q f_T(Z_{h,w})_q \, c_q , \\
# f_T(z)_q &= \frac{\exp(\log z_q / T)}{\sum_{p} \exp(\log z_p / T)} .
# \end{aligned}
# $$ (eq-annealed)
#
# $T = 1$ leaves the distribution unchanged (the mean); $T \to 0$ puts all mass on the most likely
# bin (the mode). Zhang et al. chose $T = 0.38$.
#
# ## Computing it stably
#
# Since $z = \operatorname{softmax}(\ell)$ for the logits $\ell$,
# $\log z = \ell - \operatorname{logsumexp}(\ell)$ and
# $f_T(z) = \operatorname{softmax}(\operatorname{log\_softmax}(\ell) / T)$: no probability is ever
# exponentiated and then logged, so the result is finite for $T$ down to $10^{-3}$ and for logits of
# $-\infty$ (bins the model rules out). The library's code:

# %% tags=["remove-input"]
from colorlab.decode import _expectation, annealed_mean
from colorlab.pages import show_source

show_source(annealed_mean, _expectation)

# %% [markdown]
# We check the limits numerically:

# %%
import torch

from colorlab.decode import annealed_mean, mean, mode

logits = torch.randn(2, 313, 4, 4, generator=torch.Generator().manual_seed(0)) * 3
logits[:, 200:] = float("-inf")  # a few impossible bins
gap_mean = (annealed_mean(logits, T=1.0) - mean(logits)).abs().max()
gap_mode = (annealed_mean(logits, T=1e-3) - mode(logits)).abs().max()
print(f"T = 1 vs mean: {gap_mean:.1e};  T = 0.001 vs mode: {gap_mode:.1e}")
assert gap_mean < 1e-4 and gap_mode < 1e-3

# %% [markdown]
# ## On real predictions
#
# We decode the predictions of a trained classifier at several temperatures.

# %%
from IPython.display import Markdown, display

from colorlab.color import lab_to_rgb
from colorlab.results import book_examples

examples, label = book_examples("celeba")
display(Markdown(f"> **The predictions used here** come from {label}."))
L, true_ab = examples["L"][:4], examples["ab"][:4]  # (N, 1, S, S), (N, 2, S, S)
logits = examples["logits"][:4]  # (N, 313, S/4, S/4)
temperatures = [1.0, 0.77, 0.58, 0.38, 0.2, 0.05]

# %% [markdown]
# {numref}`fig-temperature` is the static version of the slider at the end of this chapter: each
# column decodes the same predicted distributions at one temperature, from the mean ($T = 1$) to
# the mode.

# %% mystnb={"figure": {"caption": "Annealed mean of the same predictions of four test faces, from T = 1 (the mean) to T -> 0 (the mode, last column); first column: the true colours.", "name": "fig-temperature"}, "image": {"alt": "Annealed mean of the same predictions of four test faces, from T = 1 (the mean) to T -> 0 (the mode, last column); first column: the true colours."}}
import matplotlib.pyplot as plt
import torch.nn.functional as F

from colorlab.metrics import auc
from colorlab.plots import show_colorizations


def decode(T, logits=logits, size=L.shape[-2:]):
    ab = annealed_mean(logits, T=T) if T > 0 else mode(logits)
    return F.interpolate(ab, size=size, mode="bilinear")


columns = {"truth": true_ab}
columns |= {f"T={T}": decode(T) for T in temperatures}
columns["mode"] = decode(0)
show_colorizations(L, columns, size=0.85)
plt.show()

# %% [markdown]
# The trade-off can be measured: the mean chroma $\lVert ab \rVert$ of the decoded colours and
# the AuC against the true colours (Chapter {doc}`08_evaluation`) at each temperature.

# %%
from colorlab.pages import direction, glue

chroma, score = {}, {}
for T in temperatures + [0]:
    ab = decode(T)
    chroma[T] = float(ab.norm(dim=1).mean())
    score[T] = 100 * float(auc(ab, true_ab).mean())
    print(f"T = {T if T else 'mode':>5}: mean chroma {chroma[T]:6.2f}, AuC {score[T]:.1f}%")
print(f"ground truth: mean chroma {float(true_ab.norm(dim=1).mean()):.2f}")
glue("chroma-direction", direction(chroma[0.05] - chroma[1.0]))
glue("chroma-t1", chroma[1.0])
glue("chroma-t005", chroma[0.05])
glue("auc-spread", max(score.values()) - min(score.values()))

# %% [markdown]
# On these faces the mean chroma {glue:text}`chroma-direction` as $T$ falls, from
# {glue:text}`chroma-t1:.2f` at $T = 1$ to {glue:text}`chroma-t005:.2f` at $T = 0.05$, while the
# AuC varies by {glue:text}`auc-spread:.1f` points over all temperatures.
#
# ## Is the mode less saturated than the mean?
#
# The usual argument says that the mean is dull because it averages modes of different hue, so
# that sharpening towards the mode saturates. That holds when a pixel's distribution has
# several modes. It need not hold when one bin dominates: if the most likely bin is a pale
# colour and the rest of the mass lies towards more saturated colours of a similar hue, the mean
# is *more* saturated than the mode, and lowering $T$ drains colour. We measure, per pixel at
# the network's output resolution, the chroma of the mode, the chroma of the mean, and the mean
# of the bins' chroma under the prediction, $\sum_q \hat Z_q \lVert c_q \rVert$ (which the mean's
# chroma can only undercut, by hue cancellation), on the faces and, for contrast, on the fruits.

# %%
from colorlab.gamut import ab_bins

bin_chroma = ab_bins().norm(dim=1).view(1, -1, 1, 1)  # (1, 313, 1, 1)
why = {}
from colorlab.report import DATASETS  # the report's two data sets

for dataset in DATASETS:
    z = book_examples(dataset)[0]["logits"][:4]  # (4, 313, h, w)
    p = torch.softmax(z, dim=1)
    of_mode, of_mean = mode(z).norm(dim=1), mean(z).norm(dim=1)  # (4, h, w)
    why[dataset] = {
        "mode": float(of_mode.mean()), "mean": float(of_mean.mean()),
        "expected": float((p * bin_chroma).sum(dim=1).mean()),
        "paler": 100 * float((of_mode < of_mean).float().mean()),
        "peak": 100 * float(p.max(dim=1).values.mean()),
        "sharp": float(annealed_mean(z, T=0.05).norm(dim=1).mean()),
        "images": len(z),
    }
    w = why[dataset]
    print(f"{dataset}: chroma of the mode {w['mode']:.2f}, of the mean {w['mean']:.2f}, "
          f"expected bin chroma {w['expected']:.2f}; mode paler than mean at {w['paler']:.0f}% "
          f"of pixels; the most likely bin holds {w['peak']:.0f}% of the mass on average")

# %% tags=["remove-input"]
face, fruit = why["celeba"], why["fruits"]
face_paler = face["mode"] < face["mean"]
fruit_paler = fruit["mode"] < fruit["mean"]
text = [
    f"On the faces the mode is **{'less' if face_paler else 'more'} saturated than the mean**: "
    f"its chroma averages {face['mode']:.2f} against {face['mean']:.2f} for the mean, over the "
    f"{face['images']} test faces the run kept. The most likely bin "
    f"holds {face['peak']:.0f}% of a pixel's probability on average. Averaged over the whole "
    f"distribution the bins' chroma is {face['expected']:.2f}; hue cancellation brings the "
    f"chroma of the mean colour down to {face['mean']:.2f}."]
if face_paler:
    text.append(
        "So on these faces averaging pulls a pixel away from grey, and sharpening it towards "
        "its mode drains colour: where the model's single most likely colour is a pale tone and "
        "the rest of its mass lies on more saturated tones of a similar hue, the mode is the "
        f"paler choice. These {face['images']} faces show that this can happen, not how often "
        "it does.")
text.append(
    f"On the fruits the mode is {'less' if fruit_paler else 'more'} saturated than the mean "
    f"({fruit['mode']:.2f} against {fruit['mean']:.2f}), and the chroma at $T = 0.05$ is "
    f"{fruit['sharp']:.2f} against "
    f"{fruit['mean']:.2f} at $T = 1$.")
if face_paler != fruit_paler:
    text.append(
        "The annealed mean therefore does not always saturate; what it always does is move each "
        "pixel towards its single most likely bin, which is the more colourful choice only "
        "where the distribution's peak is more colourful than its average.")
display(Markdown(" ".join(text)))

# %% [markdown]
# ## The temperature for each method
#
# Class rebalancing changes the distributions the network predicts, so the same temperature acts
# differently on the two classification models.

# %%
per_method = {}
for method in ("Class", "Class+rebal"):
    try:
        ex, _ = book_examples("celeba", method)
    except FileNotFoundError:
        continue
    z, target = ex["logits"][:4], ex["ab"][:4]
    per_method[method] = {T: decode(T, logits=z, size=target.shape[-2:]) for T in temperatures}
    per_method[method] = {T: (float(ab.norm(dim=1).mean()), 100 * float(auc(ab, target).mean()))
                          for T, ab in per_method[method].items()}
if len(per_method) == 2:
    lines = ["| T | " + " | ".join(f"{m}: chroma | {m}: AuC" for m in per_method) + " |",
             "| ---: | " + " | ".join("---: | ---:" for _ in per_method) + " |"]
    for T in temperatures:
        lines.append(f"| {T} | " + " | ".join(f"{per_method[m][T][0]:.2f} | {per_method[m][T][1]:.1f}"
                                           for m in per_method) + " |")
    display(Markdown("The run kept the logits of both (seed 0, the same test faces); the table "
                     "gives each model's mean chroma and AuC at each temperature.\n\n"
                     + "\n".join(lines)))
else:
    display(Markdown("The run shown here kept the logits of Class+rebal only (it was recorded "
                     "before `colorlab reproduce` kept those of Class too), so this comparison "
                     "waits for a run that keeps both; only Class+rebal is decoded above."))

# %% [markdown]
# ## Try it
#
# In Jupyter or Colab, the slider below re-decodes the predictions at any temperature (it needs a
# running kernel, so the web page shows the static figure above instead, and the book's build
# skips it).

# %% tags=["remove-cell"]
import ipywidgets as widgets

from colorlab.decode import DEFAULT_T
from colorlab.pages import live_kernel


def show(T=DEFAULT_T):
    rgb = lab_to_rgb(torch.cat([L, decode(T)], dim=1))
    fig, axes = plt.subplots(1, len(L), figsize=(2 * len(L), 2))
    for ax, img in zip(axes, rgb):
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.axis("off")
    fig.suptitle(f"annealed mean, T = {T:.2f}")
    plt.show()


if live_kernel():
    widgets.interact(show, T=widgets.FloatSlider(value=DEFAULT_T, min=0.01, max=1.0, step=0.01,
                                                 continuous_update=False))
