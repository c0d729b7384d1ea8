# %% [markdown]
# # Evaluation
#
# Colorization has no single right answer, so no single number captures its quality. The report
# uses two kinds of measure: how close the predicted colours are to the true ones, and whether an
# image classifier still recognises the colorized image.
#
# ## AuC: the area under the cumulative error curve
#
# For an image with true colours $y$ and predicted colours $\hat y$, let
# $e_{h,w} = \lVert \hat y_{h,w} - y_{h,w} \rVert_2$ be the $ab$ error of each pixel (Lab units).
# The fraction of pixels within a threshold $t$, $F(t) = \frac{1}{HW} \sum_{h,w} [e_{h,w} \le t]$,
# rises from $F(0)$ to 1 as $t$ grows. Zhang et al.'s "raw accuracy" is its normalised area over
# the thresholds $t = 0, 1, \dots, 150$:
#
# $$
# \text{AuC} = \frac{1}{151} \sum_{t=0}^{150} \frac{1}{HW} \sum_{h,w} [e_{h,w} \le t] \in [0, 1],
# $$ (eq-auc)
#
# computed per image and averaged over the test set. A prediction that is never more than $t$
# off scores at least $1 - t/151$.
#
# **Rebalanced AuC** weights each pixel by the inverse prior $1/\tilde p_{q^*}$ of its true bin
# $q^*$ (the smoothed training prior of Chapter {doc}`04_regression_vs_classification`), so that a
# rare saturated pixel counts as much as a common grey one:
#
# $$
# \text{AuC}_\text{rebal} = \frac{1}{151} \sum_{t=0}^{150}
# \frac{\sum_{h,w} \tilde p_{q^*_{h,w}}^{-1} [e_{h,w} \le t]}{\sum_{h,w} \tilde p_{q^*_{h,w}}^{-1}} .
# $$ (eq-auc-rebal)
#
# Two baselines anchor the scale: **Gray** predicts $a = b = 0$ everywhere, **Random** copies the
# colours of a random training image. A small check of {eq}`eq-auc`:

# %%
import torch

from colorlab.metrics import auc

truth = torch.zeros(1, 2, 4, 4)
pred = truth.clone()
pred[..., :2, :] = 30.0  # half the pixels off by 30 * sqrt(2) = 42.4
value = float(auc(pred, truth))
# thresholds 43..150 count the erring pixels
expected = 0.5 * 1 + 0.5 * (150 - 42) / 151
print(f"AuC = {value:.4f}, by hand {expected:.4f}")
assert abs(value - expected) < 1e-12

# %% [markdown]
# And on real pixels: the Gray baseline's AuC on a fixed set of sample images, by `colorlab` and
# by a direct NumPy loop over the 151 thresholds.

# %%
import numpy as np

from colorlab.batches import to_lab
from colorlab.data import SampleImages
from colorlab.metrics import gray_ab

sample = SampleImages(size=32, n=24, seed=0)
_, true_ab = to_lab(sample.images)
gray = float(auc(gray_ab(true_ab), true_ab).mean())
err = np.linalg.norm(true_ab.double().numpy(), axis=1).reshape(len(sample), -1)
loop = np.mean([np.mean([(e <= t).mean() for t in range(151)]) for e in err])
print(f"Gray AuC on {len(sample)} sample images: colorlab {100 * gray:.4f}%, "
      f"loop {100 * loop:.4f}%")
assert abs(gray - loop) < 1e-12

# %% [markdown]
# ## The semantic test: classifier accuracy
#
# A colorization is good if it looks real. The report measured this by classifying colorized
# images with VGG16 {cite}`simonyan2015vgg` trained on ImageNet: for the five fruit classes that
# ImageNet has (apple ~ "Granny Smith", strawberry, orange, pineapple, banana), how often is the
# top-1 class right? This book uses EfficientNet-Lite0 {cite}`tan2019efficientnet`, whose ImageNet
# weights ship inside a Python package and therefore work offline; VGG16 remains selectable
# (`colorlab evaluate --classifier vgg16`) where its weights can be downloaded. CelebA has no
# ImageNet class, so there we report a label-free **agreement**: how often the top-1 class of the
# colorized image equals that of the real colour image.
#
# ## Results

# %%
from IPython.display import Markdown, display

from colorlab.results import book_results

results = book_results()
display(Markdown(results.markdown()))
display(Markdown(results.path.joinpath("table1.md").read_text()))

# %% [markdown]
# {numref}`fig-cumulative` shows the cumulative error curves behind the AuC (the report's Fig. 5),
# per pixel (all test pixels pooled) and per image (the fraction of images whose mean error is
# within $t$).

# %% [figure fig-cumulative] Cumulative ab-error curves per pixel (left) and per image (right) on the faces (top) and the fruits (bottom) (report Fig. 5). The legend gives each method's AuC.
import matplotlib.pyplot as plt

from colorlab.report_figures import plot_cumulative

fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
for row, dataset in zip(axes, ("celeba", "fruits")):
    metrics = results.json(dataset, "metrics.json")
    for ax, kind in zip(row, ("pixel", "image")):
        plot_cumulative(metrics, f"cumulative_per_{kind}", ax=ax,
                        title=f"{dataset}: per {kind}")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Table 1 beside the report
#
# The report's numbers are shown in parentheses next to ours when the recorded run is on the real
# data. Where they differ, these are the reasons we know of, each a deliberate or unavoidable
# change:
#
# * **Resolution.** The report resized 178x218 CelebA images to 176x176. The copy of CelebA used
#   here is stored at half that size, so the experiments run at 88x88, without the finest detail
#   (eyes, hair strands). We have not measured how much this moves the scores.
# * **Classifier.** EfficientNet-Lite0 instead of VGG16: both are ImageNet classifiers, but their
#   accuracy on the fruit photos differs already on the ground-truth images, so compare each column
#   with the ground-truth row of the same classifier, not across papers.
# * **Prior.** The report's code rebalanced with a prior measured on ImageNet (Chapter
#   {doc}`03_ab_gamut`); `colorlab` measures the prior on each training split, as Zhang et al.
#   describe. The rebalanced AuC uses that prior too.
# * **Batch and learning rate.** Batch 64 with the learning rate scaled by $\sqrt{8}$, for speed
#   on a GPU; the loss is computed at 1/4 resolution, as in Zhang et al.
# * **Splits.** Our 60/20/20 split is a deterministic function of the file names; the report's
#   split is not published, so the test images differ.
#
# When this page shows a CI-sized run (see the label above), its numbers come from tiny models
# trained for seconds on sample images and say nothing about these differences.

# %% [markdown]
# ## What the recorded run shows
#
# Two tables make the comparison precise. The first sets every number of the report's Table 1
# beside ours, with the difference in percentage points. For classifier accuracy it also gives
# each method's accuracy as a share of the ground truth's accuracy under the same classifier, the
# fairer comparison across two classifiers. The second compares the methods image by image on the
# same test images: the mean per-image AuC difference with its standard error (in points,
# {eq}`eq-auc` per image). Pairing removes the variation between images that both methods share, so
# small differences can be told from noise.

# %%
from colorlab.metrics import paired_difference
from colorlab.table1 import report_comparison_markdown

comparison = report_comparison_markdown(results.json("table1.json"))
display(Markdown(comparison or "This page shows a CI-sized run on sample images: there is "
                 "nothing to set beside the report."))

lines = ["| dataset | test images | L2 - Gray | Class - L2 | Class+rebal - Class |",
         "| --- | ---: | ---: | ---: | ---: |"]
for dataset in ("celeba", "fruits"):
    metrics = results.json(dataset, "metrics.json")
    cells = []
    for a, b in (("L2", "Gray"), ("Class", "L2"), ("Class+rebal", "Class")):
        mean, se = paired_difference(metrics[a]["per_image_auc"], metrics[b]["per_image_auc"])
        cells.append(f"{100 * mean:+.2f} ± {100 * se:.2f}")
    lines.append(f"| {dataset} | {len(metrics['Gray']['per_image_auc'])} | "
                 + " | ".join(cells) + " |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# The tables above are computed from whichever run this page shows. The paragraphs below discuss
# the run recorded in `results/` (one NVIDIA H100, November 2026; the label at the top of the
# results gives its commit and time).
#
# * **Faces: close to the report.** Every AuC is within 0.9 points of the report's. The three
#   models gain 3.5 to 3.9 points over Gray. Between themselves they differ by a few tenths of a
#   point: Class is 0.15 ± 0.05 above L2 and Class+rebal 0.32 ± 0.05 below Class. These
#   differences are small, but with 1,440 paired test images they are larger than their standard
#   errors.
# * **Fruits: close, except L2.** Gray, Random, Class and Class+rebal are within 1.3 points of
#   the report. Our L2 model scores 85.0 against the report's 76.9. The report's L2 score is
#   exactly its Gray score, which is what a regression model that predicts almost no colour
#   would get. Ours colours the fruit (Chapter {doc}`09_successes_failures`) and scores 0.36 ±
#   0.16 below Class. We cannot inspect the report's model, so this is an observation, not an
#   explanation.
# * **Rebalancing did not pay off here.** Zhang et al. expect class rebalancing to cost a little
#   plain AuC and to buy rebalanced AuC and recognisability. In this run it lowers both AuCs on
#   both datasets: fruits AuC 0.67 ± 0.14 below Class, rebalanced AuC 80.5 → 79.9. The classifier
#   also recognises fewer of its fruit images than Class's: 122 against 131 of 308, a difference
#   inside the binomial standard error of about 2.8 points of each accuracy. The report saw the
#   opposite on the classifier (39.8 % against 35.9 %). Each configuration was trained once (seed
#   0), so these differences cannot be separated from run-to-run variation. Class+rebal is also
#   the most overfit model at epoch 100 (Chapter {doc}`07_training`), which may count against it.
# * **The classifier is stricter with grey.** EfficientNet-Lite0 recognises 56.8 % of the real
#   colour images of the five ImageNet fruit classes (VGG16 in the report: 44.0 %). As a share of
#   that ground truth: Gray 37 %, Random 39 %, L2 62 %, Class+rebal 70 %, Class 75 %. Under VGG16
#   the report had Gray at 75 %, above its L2 (72 %), and Class+rebal first (90 %). To
#   EfficientNet-Lite0 a grey fruit is much harder to recognise, so every trained colorizer gains
#   a lot over Gray.
