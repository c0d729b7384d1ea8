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
# > [its page](https://colorlab-book.github.io/colorlab/book/03_ab_gamut.html) shows it with its
# > figures, cross-references and numbers in place. Colab and Jupyter do not render the book's
# > MyST markup: here a cross-reference shows as a role in braces (`{numref}`, `{eq}`, `{doc}`), a
# > number that the page fills in from the computation as `{glue:text}` with the number's name,
# > and a figure as `{glue:figure}` with its name. Run the cells: the cell that computes a number
# > prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # Quantizing the ab gamut
#
# Zhang et al. turn colour prediction into classification by cutting the $ab$ plane into
# squares of side 10 and predicting, for every pixel, a probability for each square ("bin") that
# real colours fall into. Their table has $Q = 313$ bins. This chapter derives where the bins come
# from and measures how real colours spread over them.
#
# ## The grid and the bins sRGB can reach
#
# A bin is represented by its centre $(a, b) \in 10\,\mathbb{Z}^2$; a colour belongs to the bin
# whose centre is nearest, i.e. $a$ and $b$ rounded to the nearest multiple of 10. To find the bins
# that real images can produce we convert **all** $256^3$ 8-bit sRGB colours to Lab (previous
# chapter) and round.

# %%
import torch

import colorlab
from colorlab.gamut import ab_bins, srgb_reachable_bins

bins = ab_bins()
reachable = srgb_reachable_bins(grid=10)
table = {tuple(v) for v in bins.int().tolist()}
reached = {tuple(v) for v in reachable.int().tolist()}
ring = table - reached
print(f"bins in Zhang et al.'s table:    {len(table)}")
print(f"bins reached by 8-bit sRGB:      {len(reached)}")
print(f"reached and in the table:        {len(reached & table)}")
print(f"in the table but never reached:  {len(ring)}")
assert len(table) == 313 and len(reached) == 261
assert reached <= table and len(ring) == 52
from colorlab.pages import glue

glue("n-reached", len(reached))
glue("n-ring", len(ring))

# %% [markdown]
# Every one of the {glue:text}`n-reached` reachable bins is in the table. The other
# {glue:text}`n-ring` bins of the table are never
# the nearest bin of an 8-bit colour; each of them touches a reachable bin, forming a one-bin ring
# around the reachable region:

# %%
steps = (-10, 0, 10)
touching = sum(any((a + da, b + db) in reached for da in steps for db in steps)
               for a, b in ring)
print(f"{touching} of the {len(ring)} ring bins touch a reachable bin")
assert touching == len(ring)

# %% [markdown]
# Zhang et al. built their table from the colours of ImageNet photographs in a way their paper
# does not specify; no simple rule we tried (dilating the reachable set by 4- or 8-neighbours,
# or keeping bins whose square touches the gamut) gives exactly these 313. `colorlab` therefore
# ships the published table, because the 313 output channels of every published model follow its
# order, and uses the derivation above to explain it. The ring costs little: a classifier simply
# learns that those bins are never the answer. {numref}`fig-gamut` shows the bins in their colours
# at $L = 50$; hatched bins form the ring.

# %% mystnb={"figure": {"caption": "The 313 ab bins of Zhang et al., each filled with its colour at L = 50 (report Fig. 2a). Hatched: the 52 bins that no 8-bit sRGB colour reaches.", "name": "fig-gamut"}, "image": {"alt": "The 313 ab bins of Zhang et al., each filled with its colour at L = 50 (report Fig. 2a). Hatched: the 52 bins that no 8-bit sRGB colour reaches."}}
import matplotlib.pyplot as plt

from colorlab.plots import plot_ab_bins

fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
plot_ab_bins(highlight=reachable, ax=axes[0], L=50, title="313 bins at L = 50")
plot_ab_bins(highlight=reachable, ax=axes[1], L=75, title="the same bins at L = 75")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Nearest bins, fast and exact
#
# Every training pixel needs its nearest bins, so this search must be fast. Because the bins sit on
# a lattice, the $k$ nearest bins of a point $p$ (the trainer uses $k =$ {glue:text}`trainer-k`)
# lie, unless $p$ is far outside the gamut, among the 16 lattice sites of the $4 \times 4$ block
# next to its nearest site $c$, on the side of $p$: any other site is at least $\min(2s + |f|, 3s -
# |f|)$ away in one coordinate, where $f = p - c$ and $s = 10$. `colorlab` measures these 16
# distances instead of 313 and checks the bound for every point; points for which it fails (far
# outside the gamut) get a full search. Here is that search, from `colorlab.bin_search`;
# `neighbours` is a table built once, which lists the 16 candidate bins of every site for each
# quadrant of $f$ (index $-1$ where a site holds no bin):

# %%
from colorlab.bin_search import _k_nearest, _lattice_search
from colorlab.config import TrainConfig
from colorlab.pages import show_source

glue("trainer-k", TrainConfig().k)
show_source(_lattice_search, _k_nearest)

# %% [markdown]
# Two branches are there for the GPU, where reading a value back waits for all queued work: it
# sorts all 16 distances instead of looking for ties first, and while training it keeps the
# exactness flag on the device instead of reading it (`_DEFERRED`, explained below). We check
# the search against SciPy's k-d tree:

# %%
import numpy as np
from scipy.spatial import cKDTree

from colorlab.gamut import nearest_bins

gen = torch.Generator().manual_seed(0)
rgb = torch.rand(4, 3, 32, 32, generator=gen, dtype=torch.float64)
ab = colorlab.rgb_to_lab(rgb)[:, 1:]
idx, d2 = nearest_bins(ab, k=5)
points = ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy()
ref_d, ref_i = cKDTree(ab_bins(torch.float64).numpy()).query(points, k=5)
same = (idx.permute(0, 2, 3, 1).reshape(-1, 5).numpy() == ref_i).mean()
gap = np.abs(d2.permute(0, 2, 3, 1).reshape(-1, 5).numpy() - ref_d ** 2).max()
print(f"{len(points)} points; same 5 nearest bins, same order: {100 * same:.3f}%")
print(f"largest difference of squared distances: {gap:.1e}")
assert gap < 1e-6

# %% [markdown]
# Whether some point failed the bound is a single flag, but on a GPU reading any value back waits
# for every kernel queued before it, and the trainer searches at every step. Its targets are the
# colours of sRGB images, and for those the block always suffices: the points that fail the bound
# lie outside what sRGB reaches, for every $k$ up to `SRGB_EXACT_K`. The cell counts the 8-bit
# colours that would need the full search (every fourth level of each channel in the quick
# profile):

# %%
from colorlab.bin_search import SRGB_EXACT_K
from colorlab.gamut import needs_full_search
from colorlab.settings import profile

step = 4 if profile() == "ci" else 1
levels = torch.arange(0, 256, step, dtype=torch.float32) / 255
green_blue = torch.cartesian_prod(levels, levels)
checked = needing = 0
for red in levels:  # one red level at a time: 65,536 colours
    rgb = torch.cat([red.expand(len(green_blue), 1), green_blue], dim=1)
    ab = colorlab.rgb_to_lab(rgb.T.reshape(1, 3, 1, -1))[:, 1:]
    needing += int(needs_full_search(ab, SRGB_EXACT_K).sum())
    checked += len(rgb)
print(f"{checked:,} sRGB colours, k = {SRGB_EXACT_K}: {needing} need the full search")
assert needing == 0

# %% [markdown]
# So the trainer keeps the flags on the GPU and reads them once per epoch
# (`colorlab.bin_search.deferred_exactness`): a check that would stop the run, not a branch that
# every step waits for. `python -m colorlab.bench core` times the search against the k-d tree on a
# training-size batch.
#
# ## How real colours spread over the bins
#
# The empirical distribution $p_q$ is the fraction of pixels whose nearest bin is $q$. We measure
# it on the faces and the fruits and, when the reference tables are beside the data, compare with
# the distribution Zhang et al. measured on ImageNet {cite}`deng2009imagenet`, which the report's
# code used instead of its own data's.

# %% [markdown]
# :::{tip}
# In Colab, `!colorlab data download celeba` and `!colorlab data download fruits` fetch the real
# data into `./data`, where these cells look for it ({doc}`02_lab_colour` has the details).
# :::

# %%
from IPython.display import Markdown, display

from colorlab.transforms import to_lab
from colorlab.pages import chapter_images, data_note
from colorlab.settings import data_root
from colorlab.prior import empirical_prior

from colorlab.report import DATASETS  # the report's two data sets

priors, datasets = {}, [chapter_images(name, size=88) for name in DATASETS]
display(Markdown(data_note(*datasets)))
for ds in datasets:
    # streamed: 256 images at a time go through Lab, never the whole set
    priors[ds.name] = empirical_prior(to_lab(chunk)[1] for chunk in ds.images.split(256))
imagenet_file = data_root() / "reference" / "imagenet_prior_prob.npy"
if imagenet_file.is_file():
    priors["ImageNet (Zhang et al.)"] = torch.from_numpy(np.load(imagenet_file))
used, grey = {}, {}
for name, p in priors.items():
    used[name] = int((p > 0).sum())
    top = p.sort(descending=True).values
    grey[name] = 100 * float(p[bins.norm(dim=1) <= 10].sum())
    print(f"{name}: {used[name]} of 313 bins used; the 10 most common hold "
          f"{100 * float(top[:10].sum()):.1f}% of the pixels, the 5 bins at or next to "
          f"grey {grey[name]:.1f}%")

# %% tags=["remove-input"]
names = list(priors)
spread = ", ".join(f"{n} {used[n]}" for n in sorted(names, key=used.get))
text = (f"{{numref}}`fig-prior` shows the distributions in log scale on the $ab$ grid. In every "
        f"one, the bins at or next to grey hold {min(grey.values()):.0f}% to "
        f"{max(grey.values()):.0f}% of the pixels, and saturated colours are orders of "
        f"magnitude rarer. Bins that occur at all, of 313: {spread}.")
if "ImageNet (Zhang et al.)" not in priors:
    text += (" The ImageNet distribution is not shown: its table "
             "(`reference/imagenet_prior_prob.npy`) is not beside the data here.")
else:  # bins outside the reachable set that the published table still gives a probability
    p = priors["ImageNet (Zhang et al.)"]
    odd = [i for i, v in enumerate(bins.int().tolist()) if p[i] > 0 and tuple(v) not in reached]
    if odd:
        text += (f" The ImageNet table gives {len(odd)} of the ring bins a probability, "
                 f"{float(p[odd].sum()):.1e} of the pixels together, so its counts are not all "
                 f"nearest bins of 8-bit sRGB colours (resizing in Lab or soft-encoding could "
                 f"produce them; the paper does not say how the table was counted).")
display(Markdown(text + " That imbalance is why a classifier trained with plain cross-entropy "
                 "favours greys, and why Chapter {doc}`04_regression_vs_classification` "
                 "rebalances."))

# %% mystnb={"figure": {"caption": "Empirical distribution of ab bins, log10 scale, one panel per data set (report Fig. 2b). Blank bins never occur.", "name": "fig-prior"}, "image": {"alt": "Empirical distribution of ab bins, log10 scale, one panel per data set (report Fig. 2b). Blank bins never occur."}}
from colorlab.plots import plot_priors

plot_priors(priors)
plt.show()
