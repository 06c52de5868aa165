"""The report's "can I trust it" figures: saliency overlays, reliability diagram, robustness.

Like figures.py (whose canvas helpers these share): plain data in, a matplotlib Figure out,
matplotlib imported inside the functions. Labels are English; the page's text around them
is translated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_cnn.figures import _figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PUSH_FOR = np.array([0.80, 0.05, 0.05])  # red: pushes towards the explained class
PUSH_AGAINST = np.array([0.05, 0.30, 0.80])  # blue: pushes away from it
PAPER_INK = 0.35  # how dark full ink is drawn under an overlay (0 white .. 1 black)
GAMMA = 0.7  # opacity = (|attribution| / strongest) ** GAMMA: weaker pixels still show
WRONG, RIGHT, PLAIN = "#c0142b", "#1b8a3a", "#222222"  # caption colours


def overlay(image: np.ndarray, attribution: np.ndarray) -> np.ndarray:
    """(28, 28) uint8 digit and (28, 28) attributions -> (28, 28, 3) RGB in [0, 1]: the digit
    in grey, red where the attribution is positive, blue where negative, opaque at the
    image's strongest pixel."""
    paper = 1.0 - PAPER_INK * (image.astype(np.float64) / 255.0)
    rgb = np.repeat(paper[..., None], 3, axis=2)
    scale = float(np.abs(attribution).max()) or 1.0
    alpha = np.clip(np.abs(attribution) / scale, 0.0, 1.0)[..., None] ** GAMMA
    colour = np.where(attribution[..., None] >= 0, PUSH_FOR, PUSH_AGAINST)
    return rgb * (1.0 - alpha) + colour * alpha


Cell = tuple[np.ndarray, str, str]  # (RGB image (H, W, 3) in [0, 1], caption, its colour)


def ink(image: np.ndarray) -> np.ndarray:
    """A digit (uint8 0..255 or float 0..1, ink bright as in MNIST) as dark ink on white RGB."""
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    paper = 1.0 - np.clip(image.astype(np.float64) / scale, 0.0, 1.0)
    return np.repeat(paper[..., None], 3, axis=2)


def _strip(cells: Sequence[Cell], cols: int, gap: int) -> np.ndarray:
    """The cells side by side, `cols` wide (blank cells fill a short row), grey gaps between."""
    h, w = cells[0][0].shape[:2]
    strip = np.full((h, cols * (w + gap) - gap, 3), 0.8)
    for i in range(cols):
        left = i * (w + gap)
        strip[:, left:left + w] = cells[i][0] if i < len(cells) else 1.0
    return strip


def tiled(rows: Sequence[tuple[str, Sequence[Cell]]], title: str) -> Figure:
    """Rows of small images, each row one axes (one image: fast to draw), captions above
    each image in their colours, the row's label on its left."""
    cols = max(len(cells) for _, cells in rows)
    lines = max(c[1].count("\n") + 1 for _, cells in rows for c in cells)
    width = max(8.0, cols * 1.4)
    fig = _figure(width, len(rows) * (width / cols * 0.95 + 0.2 * lines) + 0.6)
    gap = 2
    for ax, (label, cells) in zip(fig.subplots(len(rows), 1, squeeze=False)[:, 0], rows,
                                  strict=True):
        side = cells[0][0].shape[1]
        ax.imshow(_strip(cells, cols, gap), interpolation="nearest")
        ax.set_xticks([i * (side + gap) + (side - 1) / 2 for i in range(len(cells))],
                      [c[1] for c in cells], fontsize=9)
        ax.xaxis.tick_top()
        for tick, cell in zip(ax.xaxis.get_major_ticks(), cells, strict=True):
            tick.label2.set_color(cell[2])  # label2: the label above the axes
        ax.tick_params(length=0)
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=10)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(title, fontsize=14)
    return fig


def _reliability_panel(ax: Any, ax_count: Any, rel: Any, title: str) -> None:
    centres = (rel.edges[:-1] + rel.edges[1:]) / 2
    width = rel.edges[1] - rel.edges[0]
    filled = rel.counts > 0
    ax.bar(centres[filled], rel.accuracy[filled], width=width * 0.95, color="#6baed6",
           edgecolor="#2171b5", label="accuracy in the bin")
    gap_low = np.minimum(rel.accuracy, rel.confidence)[filled]
    ax.bar(centres[filled], np.abs(rel.accuracy - rel.confidence)[filled], bottom=gap_low,
           width=width * 0.95, color="none", edgecolor=WRONG, hatch="//",
           label="gap to the mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="#555555", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=12)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    ax_count.bar(centres, np.maximum(rel.counts, 0.8), width=width * 0.95, color="#999999")
    ax_count.set_yscale("log")
    ax_count.set_ylim(0.8, max(10, rel.counts.max()) * 2)
    ax_count.set_xlim(0, 1)
    ax_count.set_xlabel("confidence (top probability), 15 bins")
    ax_count.set_ylabel("images (log)")


def reliability_diagram(before: Any, after: Any, temperature: float, count: int) -> Figure:
    """Accuracy against confidence per bin, before and after temperature scaling, with the
    number of images in each bin below."""
    fig = _figure(12, 6.2)
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 1])
    for col, (rel, name) in enumerate(((before, "Before: softmax(logits)"),
                                       (after, f"After: softmax(logits / {temperature:.3f})"))):
        ax = fig.add_subplot(grid[0, col])
        ax_count = fig.add_subplot(grid[1, col], sharex=ax)
        _reliability_panel(ax, ax_count, rel, f"{name}, ECE {rel.ece:.2%}")
    fig.suptitle(f"Reliability on the test set ({count:,} images)", fontsize=14)
    return fig


def robustness_curves(accuracy: dict[str, list[tuple[float, float]]], units: dict[str, str],
                      count: int) -> Figure:
    """Accuracy against the size of each perturbation; both shift directions share a panel."""
    from matplotlib.ticker import PercentFormatter

    panels = [[f] for f in accuracy if not f.startswith("shift")]
    shifts = [f for f in accuracy if f.startswith("shift")]
    if shifts:
        panels.insert(1, shifts)
    fig = _figure(max(12.0, 3.2 * len(panels)), 3.9)
    for ax, families in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for family in families:
            levels, values = zip(*accuracy[family], strict=True)
            ax.plot(levels, np.array(values) * 100, "o-", markersize=5,
                    label=family.replace("_", " "))
        ax.set_title(families[0].split("_")[0], fontsize=12)
        ax.set_xlabel(units[families[0]])
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
        if len(families) > 1:
            ax.legend(fontsize=9)
    fig.supxlabel(f"accuracy on the first {count:,} test images", fontsize=11)
    return fig
