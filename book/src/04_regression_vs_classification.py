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
# > [its page](https://colorlab-book.github.io/colorlab/book/04_regression_vs_classification.html)
# > shows it with its figures, cross-references and numbers in place. Colab and Jupyter do not
# > render the book's MyST markup: here a cross-reference shows as a role in braces (`{numref}`,
# > `{eq}`, `{doc}`), a number that the page fills in from the computation as `{glue:text}` with
# > the number's name, and a figure as `{glue:figure}` with its name. Run the cells: the cell that
# > computes a number prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # Regression versus classification
#
# The network sees the lightness $X \in \mathbb{R}^{H \times W \times 1}$ and must output colour.
# The obvious formulation regresses the $ab$ channels $Y \in \mathbb{R}^{H \times W \times 2}$
# directly with the squared error
#
# $$
# L_2(\hat Y, Y) = \frac12 \sum_{h,w} \left\lVert Y_{h,w} - \hat Y_{h,w} \right\rVert_2^2 .
# $$ (eq-l2)
#
# ## Why L2 regresses to the mean
#
# Suppose the same lightness pattern (a shirt, say) is red in half the training images and blue in
# the other half. For that input the best constant prediction $\hat y$ minimises the expected loss
# $\mathbb{E}\,\tfrac12\lVert y - \hat y\rVert^2$, whose gradient $\hat y - \mathbb{E}[y]$ vanishes
# at the **mean**: half-way between red and blue, a paler mauve that appears in *no* training
# image. We let gradient descent find it, using the library's `L2Loss`:

# %%
import matplotlib.pyplot as plt
import torch

import colorlab
from colorlab.decode import annealed_mean, mode
from colorlab.losses import L2Loss, RebalancedCrossEntropy

red, blue = torch.tensor([60.0, 45.0]), torch.tensor([20.0, -60.0])
# two training pixels with the same input
targets = torch.stack([red, blue]).view(2, 2, 1, 1)

guess = torch.zeros(1, 2, 1, 1, requires_grad=True)  # one ab prediction for both
opt = torch.optim.SGD([guess], lr=0.5)
for _ in range(200):
    opt.zero_grad()
    L2Loss()(guess.expand(2, 2, 1, 1), targets).backward()
    opt.step()
optimum, average = guess.detach().flatten(), targets.mean(0).flatten()
print(f"L2 optimum ab = {[round(v, 2) for v in optimum.tolist()]}")
print(f"mean of the targets = {average.tolist()}")
assert torch.allclose(optimum, average, atol=1e-3)
from colorlab.pages import glue

chroma = {name: float(ab.norm()) for name, ab in (("red", red), ("blue", blue), ("mean", optimum))}
print("chroma (distance from grey): " + ", ".join(f"{k} {v:.1f}" for k, v in chroma.items()))
for name, value in chroma.items():
    glue(f"chroma-{name}", value)

# %% [markdown]
# The classification view keeps both answers. Replace the single $ab$ value by a probability
# distribution $\hat Z_{h,w} \in \Delta^{Q}$ over the $Q = 313$ bins and train it with
# cross-entropy: the optimum puts half the mass on the red bin and half on the blue one, and
# picking a mode gives a *real* colour.

# %%
logits = torch.zeros(1, 313, 1, 1, requires_grad=True)
opt = torch.optim.Adam([logits], lr=0.1)
for _ in range(300):
    opt.zero_grad()
    RebalancedCrossEntropy(k=1)(logits.expand(2, 313, 1, 1), targets).backward()
    opt.step()
p = torch.softmax(logits.detach(), dim=1).flatten()
top = p.topk(2)
bins = colorlab.ab_bins()
for v, i in zip(*top):
    print(f"bin at ab = {bins[i].tolist()}: probability {float(v):.3f}")

# %% [markdown]
# {numref}`fig-swatches` shows the two training colours, the L2 optimum between them and the
# classifier's mode. The optimum's chroma, its distance from grey in the $ab$ plane, is
# {glue:text}`chroma-mean:.1f`, against {glue:text}`chroma-red:.1f` and
# {glue:text}`chroma-blue:.1f` for the two colours it averages: regression to the mean drains
# colour.

# %% mystnb={"figure": {"caption": "The two training colours (red and blue), the colour that minimises the L2 loss (their mean, a paler mauve that occurs in no training image) and the mode of the classifier's distribution, each at L = 55.", "name": "fig-swatches"}, "image": {"alt": "The two training colours (red and blue), the colour that minimises the L2 loss (their mean, a paler mauve that occurs in no training image) and the mode of the classifier's distribution, each at L = 55."}}
swatches = {"red": red, "blue": blue, "L2 optimum": guess.detach().flatten(),
            "classifier mode": mode(logits.detach()).flatten()}
fig, axes = plt.subplots(1, 4, figsize=(8, 2))
for ax, (name, ab) in zip(axes, swatches.items()):
    lab = torch.cat([torch.tensor([55.0]), ab]).view(1, 3, 1, 1)
    ax.imshow(colorlab.lab_to_rgb(lab)[0].permute(1, 2, 0).numpy())
    ax.set_title(f"{name}\nab = ({ab[0]:.0f}, {ab[1]:.0f})", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Soft-encoding the target
#
# A one-hot target over 313 bins throws away how close the true colour is to neighbouring bins.
# Zhang et al. soft-encode: with $q_1, \dots, q_k$ the $k = 5$ bins nearest to the true $y_{h,w}$
# and $d_j$ their distances,
#
# $$
# Z_{h,w,q} = \begin{cases}
# \dfrac{\exp\!\left(-d_q^2 / 2\sigma^2\right)}{\sum_{j=1}^{k} \exp\!\left(-d_j^2 / 2\sigma^2\right)}
# & q \in \{q_1, \dots, q_k\}, \\
# 0 & \text{otherwise,}
# \end{cases}
# $$ (eq-soft)
#
# with $\sigma = 5$. (The paper says five neighbours; the authors' training code used ten.)
# `colorlab.soft_encode` keeps $Z$ sparse, as pairs `(idx, w)` of shape `(B, k, H, W)`: a dense
# `(B, 313, H, W)` float32 target (`colorlab.encode.to_dense`) would take
# {glue:text}`dense-bytes:,d` bytes per pixel instead of {glue:text}`sparse-bytes` (five int64
# indices and five float32 weights), about {glue:text}`dense-ratio:.0f` times more, and is never
# built in training (the cell below measures both).
# The library's code: the $k$ nearest bins and their squared distances come from the gamut's
# exact nearest-bin search (Chapter {doc}`03_ab_gamut`), and the weights of {eq}`eq-soft` are a
# softmax of $-d^2 / 2\sigma^2$, taken relative to the nearest bin so that no weight underflows.

# %% tags=["remove-input"]
from colorlab.encode import _gaussian_weights, soft_encode
from colorlab.pages import show_source

show_source(soft_encode, _gaussian_weights)

# %% [markdown]
# A target colour and its five weights, and the bytes per pixel of the sparse target and of the
# dense one:

# %%
from colorlab.encode import soft_encode, to_dense

point = torch.tensor([23.0, -14.0]).view(1, 2, 1, 1)
idx, w = soft_encode(point, k=5, sigma=5.0)
for i, weight in zip(idx.flatten().tolist(), w.flatten().tolist()):
    print(f"bin {i:3d} at ab = {bins[i].tolist()}: weight {weight:.3f}")
assert abs(float(w.sum()) - 1) < 1e-6
sparse_bytes = (idx.element_size() + w.element_size()) * idx.shape[1]  # one pixel's (idx, w)
dense = to_dense(idx, w)
dense_bytes = dense.element_size() * dense.shape[1]  # one pixel's 313 floats
glue("sparse-bytes", sparse_bytes)
glue("dense-bytes", dense_bytes)
glue("dense-ratio", dense_bytes / sparse_bytes)

# %% [markdown]
# ## The classification loss
#
# The network outputs logits, $\hat Z = \operatorname{softmax}(\text{logits})$ over the bins, and
# is trained with the (rebalanced) multinomial cross-entropy
#
# $$
# L_\text{cl}(\hat Z, Z) = -\sum_{h,w} v(Z_{h,w}) \sum_q Z_{h,w,q} \log \hat Z_{h,w,q} ,
# $$ (eq-ce)
#
# where $v$ weights each pixel by the rarity of its colour (next section; $v \equiv 1$ without
# rebalancing). `RebalancedCrossEntropy` computes $\log \hat Z$ with `log_softmax`, which is exact
# and stable, and gathers only the $k$ entries where $Z \neq 0$. With `reduction="sum"` it is
# exactly {eq}`eq-ce` summed over a batch; the default `"mean"` divides by the number of pixels so
# that the loss scale does not depend on the image size.
#
# ## Class rebalancing
#
# Chapter {doc}`03_ab_gamut` showed that the bins at or next to grey hold a large share of the
# pixels: on the faces below, the {glue:text}`grey-bins` of the 313 bins that lie within chroma 10
# of grey hold {glue:text}`grey-share:.0f`% of them. A classifier that minimises {eq}`eq-ce` with
# $v \equiv 1$ learns to bet on them. Zhang et al. weight each pixel by its nearest bin
# $q^* = \arg\max_q Z_{h,w,q}$:
#
# $$
# \begin{aligned}
# v(Z_{h,w}) &= w_{q^*}, \\
# w &\propto \Big((1 - \lambda)\,\tilde p + \frac{\lambda}{Q}\Big)^{-1}, \\
# \sum\nolimits_q \tilde p_q w_q &= 1 ,
# \end{aligned}
# $$ (eq-rebal)
#
# where $\tilde p$ is the empirical distribution smoothed by a Gaussian of width $\sigma = 5$ over
# the $ab$ plane. $\lambda = 1$ gives uniform weights, $\lambda = 0$ pure inverse frequency, and
# Zhang et al. use $\lambda = 1/2$; the normalisation makes the expected weight one, so the loss
# keeps its scale. The smoothing is over the *distance between bin centres*; smoothing along the
# array of 313 bins, as one public implementation does, mixes bins that are far apart in colour.
#
# Both losses and the weights, from the library (the argument checks are left in: they are what a
# reader's mistake runs into first):

# %% tags=["remove-input"]
from colorlab.losses import l2_loss, rebalanced_cross_entropy
from colorlab.prior import rebalance_weights

show_source(l2_loss, rebalanced_cross_entropy, rebalance_weights)

# %% [markdown]
# :::{tip}
# In Colab, `!colorlab data download celeba` and `!colorlab data download fruits` fetch the real
# data into `./data`, where these cells look for it ({doc}`02_lab_colour` has the details).
# :::

# %%
import numpy as np

from IPython.display import Markdown, display

from colorlab.transforms import to_lab
from colorlab.pages import chapter_images, data_note
from colorlab.prior import empirical_prior, rebalance_weights, smooth_prior

faces = chapter_images("celeba", size=88)
display(Markdown(data_note(faces)))
p = empirical_prior(to_lab(chunk)[1] for chunk in faces.images.split(256))
near_grey = bins.norm(dim=1) <= 10
glue("grey-bins", int(near_grey.sum()))
glue("grey-share", 100 * float(p[near_grey].sum()))
p_smooth = smooth_prior(p, sigma=5.0)
weights = {lam: rebalance_weights(p_smooth, lam) for lam in (0.0, 0.25, 0.5, 1.0)}
for lam, wl in weights.items():
    norm = float((p_smooth * wl).sum())
    print(f"lambda {lam:4.2f}: weights from {wl.min():.3g} to {wl.max():.3g}, "
          f"sum_q p~_q w_q = {norm:.6f}")
    assert abs(norm - 1) < 1e-9

# %% mystnb={"figure": {"caption": "Left: rebalancing weights against the smoothed prior for several lambda (log-log). Right: the weights of lambda = 1/2 on the ab grid.", "name": "fig-weights"}, "image": {"alt": "Left: rebalancing weights against the smoothed prior for several lambda (log-log). Right: the weights of lambda = 1/2 on the ab grid."}}
from colorlab.plots import plot_prior

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
order = p_smooth.argsort()
for lam, wl in weights.items():
    axes[0].loglog(p_smooth[order], wl[order], label=f"λ = {lam}")
axes[0].set_xlabel("smoothed prior p~ of the bin")
axes[0].set_ylabel("weight w")
axes[0].legend()
image = plot_prior(weights[0.5], ax=axes[1], title="w for λ = 1/2 (log10)")
fig.colorbar(image, ax=axes[1])
plt.tight_layout()
plt.show()

# %% [markdown]
# Rare, saturated bins get the largest weights. From {eq}`eq-rebal`, the ratio of the largest to
# the smallest weight is
#
# $$
# \begin{aligned}
# \frac{\max_q w_q}{\min_q w_q}
# &= \frac{(1 - \lambda) \max_q \tilde p_q + \lambda/Q}{(1 - \lambda) \min_q \tilde p_q + \lambda/Q} \\
# &\le 1 + \frac{(1 - \lambda)\, Q \max_q \tilde p_q}{\lambda} :
# \end{aligned}
# $$
#
# finite for every $\lambda > 0$, even for bins without any mass, which keeps the gradient of a
# single rare pixel bounded ({numref}`fig-weights`):

# %%
for lam in (0.25, 0.5):
    ratio = float(weights[lam].max() / weights[lam].min())
    mix = lambda v: (1 - lam) * float(v) + lam / 313
    exact = mix(p_smooth.max()) / mix(p_smooth.min())
    bound = 1 + (1 - lam) * 313 * float(p_smooth.max()) / lam
    print(f"lambda {lam}: largest / smallest weight = {ratio:.2f} (formula {exact:.2f}, "
          f"bound {bound:.2f})")
    assert abs(ratio - exact) / exact < 1e-9 and ratio <= bound
