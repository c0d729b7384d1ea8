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
# > [its page](https://colorlab-book.github.io/colorlab/book/06_network.html) shows it with its
# > figures, cross-references and numbers in place. Colab and Jupyter do not render the book's
# > MyST markup: here a cross-reference shows as a role in braces (`{numref}`, `{eq}`, `{doc}`), a
# > number that the page fills in from the computation as `{glue:text}` with the number's name,
# > and a figure as `{glue:figure}` with its name. Run the cells: the cell that computes a number
# > prints it as `name: value`, and the cell that draws a figure shows it.

# %% [markdown]
# # The network
#
# The report's network (its Fig. 1) follows Zhang et al.: eight convolutional blocks, each of two
# or three $3 \times 3$ convolutions with ReLU, closed by batch normalisation
# {cite}`ioffe2015batchnorm` and dropout {cite}`srivastava2014dropout` with rate 0.1. Blocks 1-3
# halve the resolution with a stride-2 convolution; blocks 5 and 6 use dilation 2
# {cite}`yu2016dilated` to widen the receptive field without losing resolution; block 8 doubles the
# resolution again with nearest-neighbour upsampling; a $1 \times 1$ convolution outputs 313 logits
# per pixel (or 2 $ab$ values for the regression model). The input is $L / 100$.
#
# The table below is generated from `colorlab.ColorizationNet` itself, so it cannot drift from the
# code.

# %%
from IPython.display import Markdown, display

from colorlab.models import ColorizationNet
from colorlab.models import block_table, layer_table

SIZE = 176  # the report's input size
net = ColorizationNet("classification")
rows = layer_table(net, SIZE)
lines = ["| layer | type | output (C x H x W) | parameters | receptive field (px) |",
         "| --- | --- | --- | ---: | ---: |"]
for r in rows:
    c, h, w = r["shape"]
    lines.append(f"| `{r['layer']}` | {r['type']} | {c} x {h} x {w} | {r['params']:,} | "
                 f"{r['receptive_field']:.0f} |")
total = sum(r["params"] for r in rows)
lines.append(f"| **total** | | | **{total:,}** | |")
display(Markdown("\n".join(lines)))
assert total == sum(p.numel() for p in net.parameters()) == 24_788_032
from colorlab.pages import glue

glue("params", f"{total:,}")
wider = next(r for r in rows if r["receptive_field"] > SIZE)  # first layer that sees it all
glue("rf-block", int(wider["layer"].split(".")[1]) + 1)
glue("rf-px", wider["receptive_field"])

# %% [markdown]
# The classification network has exactly {glue:text}`params` parameters; the regression head
# replaces $128 \times 313$ weights by $128 \times 2$. {numref}`fig-network` draws the blocks.
# Each block is built by one function from its list of convolutions
# `(in, out, stride, dilation)`, and the forward pass chains the blocks and the head:

# %% tags=["remove-input"]
from colorlab.models import _block
from colorlab.pages import show_source

show_source(_block, ColorizationNet.forward)

# %% mystnb={"figure": {"caption": "The report's network (Fig. 1), drawn from ColorizationNet at 176x176 input: boxes scale with resolution (height) and channels (width); below each, its output shape and parameters.", "name": "fig-network"}, "image": {"alt": "The report's network (Fig. 1), drawn from ColorizationNet at 176x176 input: boxes scale with resolution (height) and channels (width); below each, its output shape and parameters."}}
import matplotlib.pyplot as plt

from colorlab.figures import plot_network

plot_network(block_table(net, SIZE))
plt.show()

# %% [markdown]
# ## Receptive field
#
# A layer with kernel $k$, stride $s$ and dilation $d$ grows the receptive field by $(k - 1)\,d$
# times the *jump* $j$ (the distance in input pixels between neighbouring outputs), and multiplies
# the jump by $s$:
#
# $$
# r_\text{out} = r_\text{in} + (k - 1)\, d\, j_\text{in}, \qquad j_\text{out} = s\, j_\text{in} .
# $$ (eq-receptive-field)
#
# Upsampling by 2 halves the jump. Each output pixel sees the column of the table above: in block
# {glue:text}`rf-block` the receptive field ({glue:text}`rf-px:.0f` px) first exceeds the
# 176-pixel image, so every prediction can use the whole face or fruit — which is what lets the
# network colour a pixel from what object it belongs to.

# %%
final = rows[-1]
print(f"receptive field of an output pixel: {final['receptive_field']:.0f} px")
print(f"one output pixel every {final['jump']:.0f} input pixels")
assert final["jump"] == 4

# %% [markdown]
# ## Why the loss lives at 1/4 resolution
#
# The output is $44 \times 44$ for a $176 \times 176$ input. Zhang et al. compute the loss there,
# against the true $ab$ subsampled to the same grid, and upsample only the final 2-channel $ab$
# prediction. The report's code instead upsampled the 313 logit channels by 4 before the loss: 16
# times the memory and work for the loss, and no new information, since the upsampled logits are an
# interpolation of the same 44 x 44 values. We time the loss both ways on this machine:

# %%
import time

import torch
import torch.nn.functional as F

from colorlab.transforms import downsample_ab
from colorlab.losses import RebalancedCrossEntropy
from colorlab.settings import profile

batch = 2 if profile() == "ci" else 8
logits = torch.randn(batch, 313, SIZE // 4, SIZE // 4)
ab = torch.randn(batch, 2, SIZE, SIZE) * 30
loss_fn = RebalancedCrossEntropy()


def timed(fn, repeats=3):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


quarter = timed(lambda: loss_fn(logits, downsample_ab(ab)))
upsampled = lambda: F.interpolate(logits, scale_factor=4, mode="bilinear")
full = timed(lambda: loss_fn(upsampled(), ab))
print(f"batch {batch}: loss at 44x44: {1000 * quarter:.1f} ms")
print(f"logits upsampled, loss at 176x176: {1000 * full:.1f} ms ({full / quarter:.0f}x)")
