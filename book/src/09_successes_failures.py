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
# > [its page](https://colorlab-book.github.io/colorlab/book/09_successes_failures.html) shows it
# > with its figures, cross-references and numbers in place. Colab and Jupyter do not render the
# > book's MyST markup: here a cross-reference shows as a role in braces (`{numref}`, `{eq}`,
# > `{doc}`), a number that the page fills in from the computation as `{glue:text}` with the
# > number's name, and a figure as `{glue:figure}` with its name. Run the cells: the cell that
# > computes a number prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # Successes and failures
#
# The report illustrated good colorizations (its Fig. 3) and five failure modes (its Fig. 6). A
# hand-picked figure proves little, so here every example is chosen by a stated, measured
# criterion (`colorlab.failure_modes`), applied to the whole test split of the run this page
# shows (the recorded GPU run where there is one; the note below says which):
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

from colorlab.failure_modes import FAILURE_MODES
from colorlab.pages import glue, web_image
from colorlab.results import book_results

results = book_results()
display(Markdown(results.markdown()))
# every panel as a web image (JPEG when the PNG is over 500 KB), glued into the figures below
from colorlab.report import DATASETS  # the report's two data sets

for ds in DATASETS:
    for panel in ["fig3_successes"] + [f"fig6_{mode}" for mode in FAILURE_MODES]:
        glue(f"{ds}-{panel}", web_image(results.path / ds / f"{panel}.png"))

# %% [markdown]
# ## Successes
#
# {numref}`fig-successes-celeba` and {numref}`fig-successes-fruits` reproduce the report's Fig. 3.
# In every panel of this chapter the columns are the ground truth and the three models (L2, Class,
# Class+rebal), and each row is labelled with the test image's file name.
#
# ```{glue:figure} celeba-fig3_successes
# :name: fig-successes-celeba
# :alt: Faces: the test images with the highest AuC among the colourful ones, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Faces: the test images with the highest AuC of Class+rebal among those more colourful than the median (report Fig. 3).
# ```
#
# ```{glue:figure} fruits-fig3_successes
# :name: fig-successes-fruits
# :alt: Fruits: the test images with the highest AuC among the colourful ones, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Fruits: the test images with the highest AuC of Class+rebal among those more colourful than the median (report Fig. 3).
# ```
#
# ## Failure modes
#
# The five failure modes of the report's Fig. 6, first on the fruits, where they are most varied
# ({numref}`fig-fruits-colour_bias` to {numref}`fig-fruits-colour_bleeding`), then on the faces
# ({numref}`fig-celeba-colour_bias` to {numref}`fig-celeba-colour_bleeding`). Each panel shows
# the test images that score highest on the criterion in its caption.
#
# ```{glue:figure} fruits-fig6_colour_bias
# :name: fig-fruits-colour_bias
# :alt: Fruits, colour bias: test images where the mean predicted colour is farthest from the mean true colour (a global cast), as ground truth and as colorized by L2, Class and Class+rebal.
#
# Fruits, colour bias: the test images where the mean predicted colour is farthest from the mean true colour (a global cast) (report Fig. 6).
# ```
#
# ```{glue:figure} fruits-fig6_colour_deficiency
# :name: fig-fruits-colour_deficiency
# :alt: Fruits, colour deficiency: test images where the predicted colours are least saturated compared with the true ones, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Fruits, colour deficiency: the test images where the predicted colours are least saturated compared with the true ones (report Fig. 6).
# ```
#
# ```{glue:figure} fruits-fig6_inconsistent_colouring
# :name: fig-fruits-inconsistent_colouring
# :alt: Fruits, inconsistent colouring: test images where the predicted colour changes most inside regions where the lightness and the true colour are flat, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Fruits, inconsistent colouring: the test images where the predicted colour changes most inside regions where the lightness and the true colour are flat (report Fig. 6).
# ```
#
# ```{glue:figure} fruits-fig6_edge_pollution
# :name: fig-fruits-edge_pollution
# :alt: Fruits, edge pollution: test images where the error on lightness edges is largest compared with the image's mean error, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Fruits, edge pollution: the test images where the error on lightness edges is largest compared with the image's mean error (report Fig. 6).
# ```
#
# ```{glue:figure} fruits-fig6_colour_bleeding
# :name: fig-fruits-colour_bleeding
# :alt: Fruits, colour bleeding: test images where the error just beside lightness edges is largest compared with the image's mean error, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Fruits, colour bleeding: the test images where the error just beside lightness edges is largest compared with the image's mean error (report Fig. 6).
# ```
#
# ```{glue:figure} celeba-fig6_colour_bias
# :name: fig-celeba-colour_bias
# :alt: Faces, colour bias: test images where the mean predicted colour is farthest from the mean true colour (a global cast), as ground truth and as colorized by L2, Class and Class+rebal.
#
# Faces, colour bias: the test images where the mean predicted colour is farthest from the mean true colour (a global cast) (report Fig. 6).
# ```
#
# ```{glue:figure} celeba-fig6_colour_deficiency
# :name: fig-celeba-colour_deficiency
# :alt: Faces, colour deficiency: test images where the predicted colours are least saturated compared with the true ones, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Faces, colour deficiency: the test images where the predicted colours are least saturated compared with the true ones (report Fig. 6).
# ```
#
# ```{glue:figure} celeba-fig6_inconsistent_colouring
# :name: fig-celeba-inconsistent_colouring
# :alt: Faces, inconsistent colouring: test images where the predicted colour changes most inside regions where the lightness and the true colour are flat, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Faces, inconsistent colouring: the test images where the predicted colour changes most inside regions where the lightness and the true colour are flat (report Fig. 6).
# ```
#
# ```{glue:figure} celeba-fig6_edge_pollution
# :name: fig-celeba-edge_pollution
# :alt: Faces, edge pollution: test images where the error on lightness edges is largest compared with the image's mean error, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Faces, edge pollution: the test images where the error on lightness edges is largest compared with the image's mean error (report Fig. 6).
# ```
#
# ```{glue:figure} celeba-fig6_colour_bleeding
# :name: fig-celeba-colour_bleeding
# :alt: Faces, colour bleeding: test images where the error just beside lightness edges is largest compared with the image's mean error, as ground truth and as colorized by L2, Class and Class+rebal.
#
# Faces, colour bleeding: the test images where the error just beside lightness edges is largest compared with the image's mean error (report Fig. 6).
# ```

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
