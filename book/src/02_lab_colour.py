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
# > [its page](https://colorlab-book.github.io/colorlab/book/02_lab_colour.html) shows it with its
# > figures, cross-references and numbers in place. Colab and Jupyter do not render the book's
# > MyST markup: here a cross-reference shows as a role in braces (`{numref}`, `{eq}`, `{doc}`), a
# > number that the page fills in from the computation as `{glue:text}` with the number's name,
# > and a figure as `{glue:figure}` with its name. Run the cells: the cell that computes a number
# > prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # The Lab colour space
#
# Colorization needs a colour space in which *lightness* and *colour* are separate channels:
# the network gets the lightness and predicts the rest. CIE Lab does this: $L$ is lightness,
# $a$ runs from green to red and $b$ from blue to yellow. It is also roughly *perceptually
# uniform* — equal distances look like equal differences — which makes the Euclidean distance in
# the $ab$ plane a sensible error measure.
#
# ## From sRGB to linear RGB
#
# Image files store sRGB values $c \in [0, 1]$ (8-bit values divided by 255). They are
# gamma-encoded. The standard {cite}`iec61966` undoes the encoding with a piecewise function, linear
# near black and a power law elsewhere:
#
# $$
# c_\text{lin} = \begin{cases} c / 12.92 & c \le 0.04045 \\
# \left(\dfrac{c + 0.055}{1.055}\right)^{2.4} & c > 0.04045 \end{cases}
# $$ (eq-companding)
#
# ## From linear RGB to XYZ
#
# Linear RGB is a linear map of the CIE XYZ tristimulus values. For sRGB primaries and the D65
# white point,
#
# $$
# \begin{pmatrix} X \\ Y \\ Z \end{pmatrix} =
# \begin{pmatrix} 0.412453 & 0.357580 & 0.180423 \\ 0.212671 & 0.715160 & 0.072169 \\
# 0.019334 & 0.119193 & 0.950227 \end{pmatrix}
# \begin{pmatrix} R_\text{lin} \\ G_\text{lin} \\ B_\text{lin} \end{pmatrix}.
# $$ (eq-xyz)
#
# White, $R = G = B = 1$, maps to the row sums, which match the D65 white point
# $(X_n, Y_n, Z_n) = (0.95047, 1, 1.08883)$ to within {glue:text}`white-mismatch:.5f` (the two
# are rounded separately in the standard).
#
# ## From XYZ to Lab
#
# Lab applies a cube root, which mimics the eye's compressive response, to each tristimulus value
# relative to white, with a linear segment near zero where the cube root is too steep:
#
# $$
# f(t) = \begin{cases} t^{1/3} & t > 0.008856 \\ 7.787\, t + 16/116 & t \le 0.008856 \end{cases}
# $$ (eq-lab-f)
#
# $$
# \begin{aligned}
# L &= 116 f(Y/Y_n) - 16, \\
# a &= 500\,\big(f(X/X_n) - f(Y/Y_n)\big), \\
# b &= 200\,\big(f(Y/Y_n) - f(Z/Z_n)\big).
# \end{aligned}
# $$ (eq-lab)
#
# $L$ lies in $[0, 100]$; $a$ and $b$ are differences of the responses, zero for a grey up to that
# small mismatch (below, no 8-bit grey gets $|a|$ or $|b|$ above {glue:text}`grey-ab-max:.3f`). These
# are the constants of scikit-image's `rgb2lab`, which Zhang et al. used to build their colour
# bins; `colorlab.rgb_to_lab` implements {eq}`eq-companding`–{eq}`eq-lab` in PyTorch, batched over
# `(*, 3, H, W)` tensors, on CPU or GPU, and differentiable. Its core is the function below,
# shown from the installed library: the companding, the matrix to $X/X_n, Y/Y_n, Z/Z_n$ (the
# white point folded into the matrix), $f$, and the matrix and offset of {eq}`eq-lab`.

# %% tags=["remove-input"]
from colorlab.color import _matrix, _rgb_to_lab
from colorlab.pages import show_source

show_source(_rgb_to_lab, _matrix)

# %% [markdown]
# ## Checking colorlab against scikit-image
#
# We convert every 8-bit colour (all $256^3$ of them; a subsample in the `ci` profile) with both
# libraries and compare.

# %%
import numpy as np
import torch
from skimage.color import rgb2lab

import colorlab
from colorlab.settings import profile

step = 4 if profile() == "ci" else 1
levels = np.arange(0, 256, step) / 255
r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
colours = np.stack([r, g, b], axis=-1).reshape(-1, 1, 3)  # (N, 1, 3)
reference = rgb2lab(colours)  # scikit-image: channels last
x = torch.from_numpy(colours).permute(2, 0, 1)  # colorlab: (3, N, 1)
ours = colorlab.rgb_to_lab(x).permute(1, 2, 0).numpy()
ours32 = colorlab.rgb_to_lab(x.float()).permute(1, 2, 0).double().numpy()
back = colorlab.lab_to_rgb(torch.from_numpy(ours).permute(2, 0, 1))
err64 = np.abs(ours - reference).max()
err32 = np.abs(ours32 - reference).max()
roundtrip = np.abs(back.permute(1, 2, 0).numpy() - colours).max()
print(f"{len(colours):,} colours, largest |colorlab - scikit-image|:")
print(f"  float64 {err64:.1e}, float32 {err32:.1e}")
print(f"  round trip rgb -> lab -> rgb (float64): {roundtrip:.1e}")
assert err64 <= 1e-4 and err32 <= 2e-3 and roundtrip <= 1e-5
print(f"L in [{ours[..., 0].min():.1f}, {ours[..., 0].max():.1f}], "
      f"a in [{ours[..., 1].min():.1f}, {ours[..., 1].max():.1f}], "
      f"b in [{ours[..., 2].min():.1f}, {ours[..., 2].max():.1f}]")
from colorlab.pages import glue

for i, channel in ((1, "a"), (2, "b")):
    glue(f"{channel}-min", float(ours[..., i].min()))
    glue(f"{channel}-max", float(ours[..., i].max()))
# greys (R = G = B) land on a = b = 0 up to the white point's rounding (Eq. 2.2)
greys = colorlab.rgb_to_lab(torch.linspace(0, 1, 256, dtype=torch.float64).expand(3, 256)[..., None])
glue("grey-ab-max", float(greys[1:].abs().max()))
row_sums = np.array(colorlab.color.XYZ_FROM_RGB).sum(axis=1)
glue("white-mismatch", float(np.abs(row_sums - np.array(colorlab.color.D65_WHITE)).max()))

# %% [markdown]
# The largest differences are float rounding. The ranges matter for what follows: sRGB colours
# reach $a$ from {glue:text}`a-min:.0f` to {glue:text}`a-max:.0f` and $b$ from
# {glue:text}`b-min:.0f` to {glue:text}`b-max:.0f`, an irregular region of the $ab$ plane that
# the next chapter quantizes.
#
# Not every Lab triple is a colour a screen can show: `lab_to_rgb` clips such values to
# $[0, 1]$ per channel (pass `clip=False` to see the raw values).
#
# ## L, a and b of real images
#
# The panels below show a colour image, its lightness alone, and each colour channel alone at a
# fixed mid lightness ({numref}`fig-lab-channels`), for one image of each data set.

# %% [markdown]
# :::{tip}
# **The real data in Colab.** Without it, these cells use the sample images and say so. One
# command per data set downloads it into `./data`, where colorlab looks, and checks it against the
# book's manifest (CelebA comes through `gdown`, which Colab has; elsewhere
# `pip install "colorlab[data]"`):
#
# ```
# !colorlab data download celeba
# !colorlab data download fruits
# ```
# :::

# %%
from IPython.display import Markdown, display

from colorlab.pages import chapter_images, data_note

faces = chapter_images("celeba", size=88)
fruits = chapter_images("fruits", size=88)
display(Markdown(data_note(faces, fruits)))

# %% mystnb={"figure": {"caption": "One image of each data set (top: faces, bottom: fruits; sample photographs where the real data is absent, as the note above says) split into L, a and b. The network sees only the second column.", "name": "fig-lab-channels"}, "image": {"alt": "One image of each data set (top: faces, bottom: fruits; sample photographs where the real data is absent, as the note above says) split into L, a and b. The network sees only the second column."}}
import matplotlib.pyplot as plt

from colorlab.plots import show_lab_channels

fig, axes = plt.subplots(2, 4, figsize=(6.8, 3.9))
for row, ds in zip(axes, (faces, fruits)):
    show_lab_channels(colorlab.rgb_to_lab(ds.images[3].float() / 255), axes=row)
plt.tight_layout()
plt.show()
