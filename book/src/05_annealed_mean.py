# %% [markdown]
# # From a distribution to a colour
#
# The classifier predicts, for every pixel, a distribution $\hat Z_{h,w} \in \Delta^{313}$ over the
# $ab$ bins. An image needs one colour per pixel, $\hat Y_{h,w} = \mathcal{H}(\hat Z_{h,w})$.
# Two obvious choices fail in opposite ways:
#
# * the **mean** $\sum_q \hat Z_{h,w,q}\, c_q$ of the bin centres $c_q$ averages the modes, so it is
#   desaturated, exactly like the L2 regression of Chapter {doc}`04_regression_vs_classification`;
# * the **mode** $c_{\arg\max_q \hat Z_{h,w,q}}$ is vivid but jumps between bins from one pixel to
#   the next, giving patchy, spatially inconsistent colour.
#
# Zhang et al. interpolate with the **annealed mean**: re-sharpen the distribution with a
# temperature $T$, then take its mean,
#
# $$
# \mathcal{H}(Z_{h,w}) = \sum_q f_T(Z_{h,w})_q \, c_q ,
# \qquad f_T(z)_q = \frac{\exp(\log z_q / T)}{\sum_{p} \exp(\log z_p / T)} .
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
# $-\infty$ (bins the model rules out). We check the limits numerically:

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
# {numref}`fig-temperature` is the static version of the slider below it: each column decodes the
# same predicted distributions at one temperature. The mean ($T = 1$) is dull, colours saturate
# as $T$ falls, and the smallest temperatures approach the mode with its patches.

# %% [figure fig-temperature] Annealed mean of the same predictions from T = 1 (the mean, left) to T -> 0 (the mode, right); first column: ground truth.
import matplotlib.pyplot as plt
import torch.nn.functional as F

from colorlab.metrics import auc
from colorlab.plots import show_colorizations


def decode(T):
    ab = annealed_mean(logits, T=T) if T > 0 else mode(logits)
    return F.interpolate(ab, size=L.shape[-2:], mode="bilinear")


columns = {"truth": true_ab}
columns |= {f"T = {T}": decode(T) for T in temperatures}
columns["mode"] = decode(0)
show_colorizations(L, columns, size=1.5)
plt.show()

# %% [markdown]
# The trade-off can be measured: the mean chroma $\lVert ab \rVert$ of the decoded colours rises
# as $T$ falls, while the AuC against the true colours (Chapter {doc}`08_evaluation`) changes
# little.

# %%
for T in temperatures + [0]:
    ab = decode(T)
    chroma = float(ab.norm(dim=1).mean())
    score = 100 * float(auc(ab, true_ab).mean())
    print(f"T = {T if T else 'mode':>5}: mean chroma {chroma:6.2f}, AuC {score:.1f}%")
print(f"ground truth: mean chroma {float(true_ab.norm(dim=1).mean()):.2f}")

# %% [markdown]
# ## Try it
#
# In Jupyter or Colab, the slider below re-decodes the predictions at any temperature (it needs a
# running kernel, so the web page shows the static figure above instead).

# %% tags=["remove-cell"]
import ipywidgets as widgets


def show(T=0.38):
    rgb = lab_to_rgb(torch.cat([L, decode(T)], dim=1))
    fig, axes = plt.subplots(1, len(L), figsize=(2 * len(L), 2))
    for ax, img in zip(axes, rgb):
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.axis("off")
    fig.suptitle(f"annealed mean, T = {T:.2f}")
    plt.show()


widgets.interact(show, T=widgets.FloatSlider(value=0.38, min=0.01, max=1.0, step=0.01,
                                             continuous_update=False))
