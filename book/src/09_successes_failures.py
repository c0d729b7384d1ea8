# %% [markdown]
# # Successes and failures
#
# The report illustrated good colorizations (its Fig. 3) and five failure modes (its Fig. 6). A
# hand-picked figure proves little, so here every example is chosen by a stated, measured
# criterion (`colorlab.failures`), applied to the whole test split of the recorded run:
#
# | figure | criterion (largest first) |
# | --- | --- |
# | successes | per-image AuC of Class+rebal, among images more colourful than the median |
# | colour bias | distance between the mean predicted and mean true $ab$ (a global cast) |
# | colour deficiency | mean true chroma minus mean predicted chroma (desaturation) |
# | inconsistent colouring | predicted $ab$ gradient inside regions where $L$ and the true colour are flat |
# | edge pollution | mean error on luminance edges divided by the mean error |
# | colour bleeding | mean error in a band beside luminance edges divided by the mean error |
#
# An image appears under one failure mode only. Each row shows the ground truth and the three
# models.

# %%
from IPython.display import Markdown, display

from colorlab.failures import FAILURE_MODES
from colorlab.results import book_results

results = book_results()
display(Markdown(results.markdown()))
figures = {ds: results.json(ds, "metrics.json")["figures"]
           for ds in ("celeba", "fruits")}
for ds, info in figures.items():
    print(f"{ds}: successes {info['chosen']['successes']}")

# %% [markdown]
# ## Successes
#
# {numref}`fig-successes-celeba` and {numref}`fig-successes-fruits` reproduce the report's Fig. 3.

# %% [figure fig-successes-celeba] Faces: the test images with the highest AuC among the colourful ones (report Fig. 3).
from IPython.display import Image

display(Image(filename=str(results.path / "celeba" / "fig3_successes.png")))

# %% [figure fig-successes-fruits] Fruits: the test images with the highest AuC among the colourful ones (report Fig. 3).
display(Image(filename=str(results.path / "fruits" / "fig3_successes.png")))

# %% [markdown]
# ## Failure modes
#
# {numref}`fig-failures` collects the five failure modes of the report's Fig. 6 on the fruits,
# where they are most varied; the face panels follow.

# %% [figure fig-failures] Fruits: the test images that score highest on each failure criterion (report Fig. 6), top to bottom: colour bias, colour deficiency, inconsistent colouring, edge pollution, colour bleeding.
import matplotlib.pyplot as plt
import matplotlib.image as mpimg

n = len(FAILURE_MODES)
fig, axes = plt.subplots(n, 1, figsize=(7, 4.2 * n))
for ax, mode in zip(axes, FAILURE_MODES):
    ax.imshow(mpimg.imread(results.path / "fruits" / f"fig6_{mode}.png"))
    ax.set_title(mode.replace("_", " "), fontsize=11)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %%
for mode in FAILURE_MODES:
    print(f"faces, {mode.replace('_', ' ')}: {figures['celeba']['chosen'][mode]}")
    display(Image(filename=str(results.path / "celeba" / f"fig6_{mode}.png")))

# %% [markdown]
# ## Reading the failures
#
# *Colour bias* and *colour deficiency* are the two faces of the prior: where the input leaves the
# colour ambiguous, the model falls back to the most common colours of its training set, tinting a
# whole image or washing it out. Class rebalancing fights the second at the risk of the first.
# *Inconsistent colouring* is the price of decoding each pixel separately: neighbouring pixels can
# pick different modes of a bimodal distribution, which the annealed mean softens but cannot
# remove. *Edge pollution* and *colour bleeding* come from resolution: the network predicts colour on
# a grid four times coarser than the image, and the upsampled colour crosses the sharp lightness
# edges of the full-resolution $L$.
