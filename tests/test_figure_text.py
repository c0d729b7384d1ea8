"""Figure text reads at reader size: every text of the library's figures is at least 9 CSS px
when the figure is shown in the book's 688 px column (colorlab.pages.min_text_px), at the default
size of each function and in the layout each chapter uses."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from colorlab import rgb_to_lab  # noqa: E402
from colorlab.figures import plot_cumulative, plot_loss_curves, plot_network  # noqa: E402
from colorlab.models import ColorizationNet, block_table  # noqa: E402
from colorlab.pages import COLUMN_PX, MIN_TEXT_PX, min_text_px  # noqa: E402
from colorlab.plots import (plot_ab_bins, plot_prior, plot_priors,  # noqa: E402
                            show_colorizations, show_lab_channels)
from colorlab.report import METHODS, RUNS  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_min_text_px_against_a_hand_computation():
    # 12 pt on a 4-inch figure at 100 dpi: 400 px wide, not shrunk: 12 / 72 * 100 px
    fig = Figure(figsize=(4, 3), dpi=100)
    fig.text(0.1, 0.1, "a", fontsize=12)
    fig.text(0.5, 0.5, "b", fontsize=20)
    assert min_text_px(fig) == pytest.approx(12 / 72 * 100)
    # the same figure 20 inches wide is shrunk to the column: 12 pt -> 12 / 72 * 688 / 20 px
    fig.set_size_inches(20, 3)
    assert min_text_px(fig) == pytest.approx(12 / 72 * COLUMN_PX / 20)
    # hidden and empty texts do not count
    fig.text(0.2, 0.2, "tiny", fontsize=2).set_visible(False)
    fig.text(0.2, 0.2, "", fontsize=1)
    assert min_text_px(fig) == pytest.approx(12 / 72 * COLUMN_PX / 20)


def _lab():
    return rgb_to_lab(torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)))


def _history(tmp_path, dataset):
    import json

    for run in RUNS:
        folder = tmp_path / dataset / run
        folder.mkdir(parents=True)
        rows = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2 / e + e / 100}
                for e in range(1, 11)]
        (folder / "history.json").write_text(json.dumps(rows))


def _metrics():
    curve = [i / 150 for i in range(151)]
    return {m: {"cumulative_per_pixel": curve, "cumulative_per_image": curve, "auc": 90.0}
            for m in METHODS}


def figures(tmp_path):
    """Each library figure function, at its default size and in each chapter's layout."""
    yield "show_lab_channels (ch. 1)", show_lab_channels(_lab())[0].figure
    fig, axes = plt.subplots(2, 4, figsize=(6.8, 3.9))  # ch. 2
    for row in axes:
        show_lab_channels(_lab(), axes=row)
    yield "show_lab_channels (ch. 2)", fig
    yield "plot_ab_bins (default)", plot_ab_bins().figure
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))  # ch. 3
    plot_ab_bins(ax=axes[0], title="313 bins at L = 50")
    plot_ab_bins(ax=axes[1], L=75, title="the same bins at L = 75")
    yield "plot_ab_bins (ch. 3)", fig
    p = torch.full((313,), 1 / 313)
    yield "plot_prior (default)", plot_prior(p, title="faces").figure
    for n in (2, 3):  # ch. 3: two data sets, and ImageNet when its table is present
        yield f"plot_priors x{n} (ch. 3)", plot_priors(
            {f"fruits (sample stand-in) {i}": p for i in range(n)})
    L, ab = torch.full((4, 1, 16, 16), 50.0), torch.zeros(4, 2, 16, 16)
    columns = {name: ab for name in ["truth"] + [f"T={t}" for t in (1.0, 0.77, 0.58, 0.38, 0.2,
                                                                   0.05)] + ["mode"]}
    yield "show_colorizations (ch. 5)", show_colorizations(L, columns, size=0.85)
    four = {"Ground truth": ab[:3], **{m: ab[:3] for m in RUNS.values()}}
    yield "show_colorizations (ch. 9 panels)", show_colorizations(
        L[:3], four, ["000123.jpg"] * 3, size=1.6, figure=Figure())
    blocks = block_table(ColorizationNet(width=0.125), 32)
    yield "plot_network (ch. 6)", plot_network(blocks).figure
    _history(tmp_path, "celeba")
    yield "plot_loss_curves (default)", plot_loss_curves(tmp_path, "celeba")[0].figure
    fig, axes = plt.subplots(2, 3, figsize=(9.5, 6.2))  # ch. 7
    for row in axes:
        plot_loss_curves(tmp_path, "celeba", axes=row)
    yield "plot_loss_curves (ch. 7)", fig
    yield "plot_cumulative (default)", plot_cumulative(_metrics(), title="celeba").figure
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 7.8))  # ch. 8
    for ax in axes.flat:
        plot_cumulative(_metrics(), ax=ax, title="fruits: per image")
    yield "plot_cumulative (ch. 8)", fig


def test_every_figure_text_is_at_least_9_px_in_the_column(tmp_path):
    small = {}
    for name, fig in figures(tmp_path):
        fig.canvas.draw()  # tick labels exist once drawn
        px = min_text_px(fig, dpi=100)  # the book's inline figures are 100 dpi
        if px < MIN_TEXT_PX:
            small[name] = round(px, 2)
    assert not small, f"text smaller than {MIN_TEXT_PX} px at {COLUMN_PX} px: {small}"


@pytest.mark.parametrize("n", [2, 3])
def test_the_prior_panels_leave_each_other_room(n):
    """Chapter 3's panels: each panel's tick labels and axis labels end before the next panel's
    plot begins (they overlapped beside the colorbar before the layout was constrained)."""
    p = torch.full((313,), 1 / 313)
    fig = plot_priors({f"data set {i}": p for i in range(n)})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = fig.axes[:n]  # the last axes is the colorbar
    for left, right in zip(panels, panels[1:]):
        assert left.get_tightbbox(renderer).x1 <= right.get_window_extent(renderer).x0
        assert right.get_tightbbox(renderer).x0 >= left.get_window_extent(renderer).x1
