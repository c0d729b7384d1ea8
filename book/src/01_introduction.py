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
# > [its page](https://colorlab-book.github.io/colorlab/book/01_introduction.html) shows it with
# > its figures, cross-references and numbers in place. Colab and Jupyter do not render the book's
# > MyST markup: here a cross-reference shows as a role in braces (`{numref}`, `{eq}`, `{doc}`), a
# > number that the page fills in from the computation as `{glue:text}` with the number's name,
# > and a figure as `{glue:figure}` with its name. Run the cells: the cell that computes a number
# > prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # Introduction
#
# A grey photograph keeps only the **lightness** of every pixel. *Automatic colorization*
# predicts the missing colour from the lightness alone. It is an old problem with a modern
# answer: a convolutional network trained on millions of colour photographs, which it can turn into
# training pairs for free by throwing their colour away.
#
# The task is **multimodal**: a grey shirt could have been red, blue or green, and all three
# are plausible. A model that predicts one colour per pixel and is trained to minimise the
# squared error learns the *average* of the plausible colours, which for most objects is a dull
# brown-grey. Zhang, Isola and Efros {cite}`zhang2016colorful` fixed this by predicting a
# *distribution* over 313 quantized colours per pixel, by re-weighting rare colours during
# training, and by turning the predicted distribution back into one colour with an *annealed
# mean*. Concurrent work reached related conclusions {cite}`iizuka2016let,larsson2016learning`.
#
# This book follows a student reproduction of that paper {cite}`contisterpa` which trained three
# models (an L2 regression, a classifier, and a classifier with class rebalancing) on 7,200 CelebA
# faces {cite}`liu2015celeba` and on photographs of ten kinds of fruit. We derive every equation,
# implement each one once in the library `colorlab`, test it against an independent reference,
# and regenerate the report's figures and its Table 1.
#
# ## What this book adds to the report
#
# * Every equation derived, with the code that implements it and a check against an independent
#   implementation (scikit-image, SciPy, dense float64 formulas).
# * The quantized gamut explained from first principles: which {glue:text}`reachable-bins` colour
#   bins sRGB can reach and why Zhang et al.'s table has 313.
# * A training pipeline built for the GPU: the data stays on the GPU, colour conversion and
#   target encoding run there in batch, targets are sparse, and the loss is computed at the
#   network's output resolution (Chapter {doc}`07_training` shows its measured images/s).
# * Evaluation with a stated, measured criterion for every example image shown.
#
# ## How to run it
#
# Every chapter is a notebook. Three *profiles*, chosen with the environment variable
# `COLORLAB_PROFILE`, decide how much work a chapter does:
#
# | profile | what it does | where |
# | --- | --- | --- |
# | `ci` | seconds per chapter: sample images, tiny models | the test suite |
# | `default` | real data when `COLORLAB_DATA` points at it (sample images otherwise, with a note); training chapters show the recorded GPU run | this website |
# | `full` | trains the 18 runs (3 models x 3 seeds x 2 data sets) for real and regenerates `results/`; refuses to run on a CPU | a GPU, e.g. Colab |
#
# In Colab, the first (hidden) cell of each chapter installs `colorlab` when it is missing; for
# the training chapters choose *Runtime > Change runtime type > GPU*.

# %%
import os

import colorlab
import torch
from colorlab.settings import data_root, profile

print(f"colorlab {colorlab.__version__}, torch {torch.__version__}")
print(f"profile {profile()!r}")
where = "$COLORLAB_DATA" if "COLORLAB_DATA" in os.environ else "./data (set COLORLAB_DATA)"
print(f"data folder: {where}, {'found' if data_root().is_dir() else 'not found'}")

# %% tags=["remove-cell"]
# the number of ab bins that 8-bit sRGB colours reach (derived in chapter 3), for the list above
from colorlab.gamut import srgb_reachable_bins
from colorlab.pages import glue

glue("reachable-bins", len(srgb_reachable_bins()))

# %% [markdown]
# ## The task in one picture
#
# {numref}`fig-task` shows a photograph, its lightness channel (what the network sees) and its
# colour channels (what it must predict). The next chapter explains the colour space in which
# this split is made.

# %% mystnb={"figure": {"caption": "A photograph (scikit-image's cat), its lightness L, which the network sees, and its colour channels a and b, which it must predict.", "name": "fig-task"}, "image": {"alt": "A photograph (scikit-image's cat), its lightness L, which the network sees, and its colour channels a and b, which it must predict."}}
import matplotlib.pyplot as plt
from skimage import data

from colorlab.plots import show_lab_channels

# (3, H, W) float in [0, 1]
rgb = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float() / 255
lab = colorlab.rgb_to_lab(rgb)
show_lab_channels(lab)
plt.show()
