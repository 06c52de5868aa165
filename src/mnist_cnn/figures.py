"""The report's matplotlib figures: each function takes plain data and returns a Figure.

matplotlib is imported inside the functions (Agg canvas, no pyplot state), so importing the
package never loads it. report.py computes the data and saves the figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # figure inches x 100 = pixels; every figure is at least 10 in (1000 px) wide
INK = "binary"  # dark ink on white: digits read like handwriting on paper
KIND_COLOURS = {"Input": "#d9d9d9", "Conv2D": "#6baed6", "MaxPooling2D": "#fd8d3c",
                "AveragePooling2D": "#fdae6b", "Flatten": "#bcbddc", "Dense": "#74c476",
                "Dropout": "#f0f0f0", "BatchNormalization": "#fde0ef"}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _bare(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def training_curves(history: Sequence[dict[str, float]], test_loss: float,
                    test_accuracy: float) -> Figure:
    """Loss and accuracy per epoch (training, validation when present), test as a dashed line."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = _figure(12, 4.6)
    epochs = [int(row["epoch"]) for row in history]
    for ax, key, test in zip(fig.subplots(1, 2), ("loss", "accuracy"), (test_loss, test_accuracy),
                             strict=True):
        series = [("training", key, "o-", "#1f77b4"),
                  ("validation", f"val_{key}", "s--", "#ff7f0e")]
        for label, column, style, colour in series:
            if history and column in history[0]:
                values = [row[column] for row in history]
                ax.plot(epochs, values, style, color=colour, markersize=8,
                        label=f"{label} (last {_fmt(key, values[-1])})")
        ax.axhline(test, color="#2ca02c", linestyle=":", linewidth=2,
                   label=f"test ({_fmt(key, test)})")
        ax.set_title(f"{key.capitalize()} per epoch")
        ax.set_xlabel("epoch")
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epochs) == 1:  # one point: centre it rather than let matplotlib squash the axis
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        if key == "accuracy":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    return fig


def _fmt(key: str, value: float) -> str:
    return f"{value:.2%}" if key == "accuracy" else f"{value:.4f}"


def confusion_matrix(confusion: np.ndarray, classes: Sequence[str]) -> Figure:
    """Counts as a heatmap, right answers (the diagonal) in blue and mistakes in red on a log
    scale, so that a single mistake shows; beside it each class's accuracy."""
    from matplotlib.colors import LogNorm, Normalize

    n = len(classes)
    fig = _figure(13, 7.5)
    ax, ax_acc = fig.subplots(1, 2, width_ratios=[3, 1.2])
    diagonal = np.eye(n, dtype=bool)
    off = np.ma.masked_where(diagonal | (confusion == 0), confusion)
    red = LogNorm(vmin=0.5, vmax=max(2, int(off.max() or 2)))
    blue = Normalize(vmin=0, vmax=max(1, int(confusion.max())))
    ax.imshow(np.ma.masked_where(~diagonal, confusion), cmap="Blues", norm=blue)
    image = ax.imshow(off, cmap="Reds", norm=red)
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            shade = blue(count) if i == j else red(count)
            ax.text(j, i, str(count), ha="center", va="center", fontsize=10,
                    color="white" if shade > 0.6 else "black", in_layout=False)
    ax.set_xticks(range(n), classes, rotation=45 if max(map(len, classes)) > 2 else 0,
                  ha="right" if max(map(len, classes)) > 2 else "center")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix on the test set ({int(confusion.sum()):,} images): "
                 "blue right, red wrong")
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= red.vmax]
    bar = fig.colorbar(image, ax=ax, label="mistakes (log scale; empty cells are 0)",
                       shrink=0.8, ticks=ticks)
    bar.ax.set_yticklabels([str(t) for t in ticks])
    bar.ax.minorticks_off()
    support = confusion.sum(1)
    accuracy = np.divide(np.diag(confusion), support, out=np.zeros(n), where=support > 0)
    ax_acc.barh(range(n), accuracy * 100, color="#6baed6")
    for i, value in enumerate(accuracy):
        ax_acc.text(value * 100, i, f" {value:.1%}", va="center", fontsize=10)
    low = max(0.0, math.floor(accuracy.min() * 100) - 2)
    ax_acc.set_xlim(low, 100 + (100 - low) * 0.35)  # room for the labels right of the bars
    ax_acc.set_xticks([t for t in ax_acc.get_xticks() if low <= t <= 100])
    ax_acc.set_ylim(n - 0.5, -0.5)
    ax_acc.set_yticks(range(n), classes)
    ax_acc.set_xlabel("accuracy (%)")
    ax_acc.set_title("Per-class accuracy (recall)")
    ax_acc.grid(axis="x", alpha=0.3)
    return fig


def _digit_grid(images: np.ndarray, cells: Sequence[tuple[int, str]], title: str,
                colour: str, cols: int, empty: str) -> Figure:
    """Test digits in a grid, each under its caption; `cells` are (index, caption)."""
    grid_rows = max(1, math.ceil(len(cells) / cols))
    fig = _figure(cols * 1.65, grid_rows * 2.3 + 0.5)
    axes = fig.subplots(grid_rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (index, caption) in zip(axes.flat, cells, strict=False):
        ax.imshow(images[index], cmap=INK, vmin=0, vmax=255)
        ax.set_title(caption, fontsize=10, color=colour)
    if not cells:
        axes[0, 0].text(0, 0.5, empty, fontsize=14)
    fig.suptitle(title, fontsize=14)
    return fig


def mistakes_grid(images: np.ndarray, rows: Sequence[tuple[int, str, str, float]],
                  cols: int = 8) -> Figure:
    """Digits with their true and (wrong) predicted labels; rows are (index, true, pred, p)."""
    cells = [(index, f"true: {true}\npredicted: {predicted}\n{p:.1%} sure")
             for index, true, predicted, p in rows]
    return _digit_grid(images, cells, "The most confident mistakes on the test set",
                       "#b2182b", cols, "The model made no mistakes on the test set.")


def correct_grid(images: np.ndarray, rows: Sequence[tuple[int, str, float]],
                 cols: int = 10) -> Figure:
    """Digits the model read right, with its answer; rows are (index, label, p)."""
    cells = [(index, f"{label}\n{p:.1%} sure") for index, label, p in rows]
    return _digit_grid(images, cells, "Test images read right: the first two of each class",
                       "#1a7f37", cols, "The model read no test image right.")


def conv_filters(filters: np.ndarray, name: str = "conv2d", cols: int = 8) -> Figure:
    """Each (kh, kw) kernel on one shared diverging scale, its weights written in the cells."""
    count, kh, kw = filters.shape
    rows = math.ceil(count / cols)
    fig = _figure(13, rows * 1.75 + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False)
    limit = float(np.abs(filters).max()) or 1.0
    image = None
    for i, ax in enumerate(axes.flat):
        _bare(ax)
        if i >= count:
            ax.set_axis_off()
            continue
        image = ax.imshow(filters[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        for (r, c), w in np.ndenumerate(filters[i]):
            ax.text(c, r, f"{w:.2f}", ha="center", va="center", fontsize=7, in_layout=False,
                    color="white" if abs(w) > 0.6 * limit else "black")
        ax.set_title(f"filter {i}", fontsize=9)
    fig.colorbar(image, ax=axes, label="weight (red +, blue -)", shrink=0.9)
    fig.suptitle(f"{name}: the weights of its {count} learned {kh}x{kw} filters "
                 "(on the input digit's one channel)", fontsize=14)
    return fig


def _mosaic(values: np.ndarray, cols: int, min_side: int = 12) -> np.ndarray:
    """(C, H, W) maps tiled into one image, each scaled to its own max, NaN gaps between.

    Small maps are enlarged (nearest neighbour) to `min_side` pixels so that the one-pixel
    gaps stay thin beside them."""
    repeat = max(1, math.ceil(min_side / values.shape[1]))
    values = values.repeat(repeat, axis=1).repeat(repeat, axis=2)
    c, h, w = values.shape
    rows = math.ceil(c / cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype=np.float32)
    peak = values.reshape(c, -1).max(1)
    scaled = values / np.where(peak > 0, peak, 1.0)[:, None, None]
    for i in range(c):
        r, q = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = scaled[i]
    return out


def _columns(channels: int, side: int) -> int:
    """16 maps a row; 32 when the maps are small (under 8 pixels), so they are not blown up."""
    return min(channels, 16 if side >= 8 else 32)


def feature_maps(image: np.ndarray, title: str, answer: str, layers: Sequence[Any],
                 probabilities: np.ndarray, classes: Sequence[str]) -> Figure:
    """One digit's path through the network: every map of every conv and pooling layer."""
    import matplotlib

    mosaics = [_mosaic(layer.values, _columns(*layer.values.shape[:2])) for layer in layers]
    ratios = [2.2] + [max(1.2, 13 * m.shape[0] / m.shape[1] + 0.6) for m in mosaics]
    fig = _figure(13, sum(ratios))
    top, *rows = fig.subfigures(len(ratios), 1, height_ratios=ratios)
    ax_digit, ax_prob = top.subplots(1, 2, width_ratios=[1, 5])
    ax_digit.imshow(image, cmap=INK, vmin=0, vmax=255)
    _bare(ax_digit)
    ax_digit.set_title("input (28, 28, 1)", fontsize=10)
    ax_prob.bar(range(len(classes)), probabilities * 100, color="#74c476")
    ax_prob.set_xticks(range(len(classes)), classes, fontsize=9)
    ax_prob.set_ylim(0, 105)
    ax_prob.set_ylabel("probability (%)")
    ax_prob.set_title(answer, fontsize=12)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    for sub, layer, mosaic in zip(rows, layers, mosaics, strict=True):
        ax = sub.subplots()
        ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        _bare(ax)
        ax.set_title(f"{layer.name} ({layer.kind}), output {tuple(layer.shape)}: "
                     f"{layer.values.shape[0]} feature maps", fontsize=11, loc="left")
    fig.suptitle(title, fontsize=14)
    return fig


def _block_size(shape: Sequence[int]) -> tuple[float, float]:
    """(width, height) of a layer's block: height follows the map's side (or the vector's
    length on a log scale), width the number of channels."""
    if len(shape) == 3:
        return 0.2 + 0.5 * math.sqrt(shape[2] / 64), 0.5 + 2.5 * shape[0] / 28
    return 0.15, 0.5 + 2.5 * min(1.0, math.log10(max(shape[0], 1)) / math.log10(1000))


def architecture(rows: Sequence[Any], details: Sequence[str], input_shape: Sequence[int],
                 title: str) -> Figure:
    """The network as blocks, input to output: summary rows (name, kind, shape, params) with
    a detail each ("3x3, relu")."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    blocks = [("input", "Input", tuple(input_shape), None)]
    blocks += [(r.name, f"{r.kind}{', ' if d else ''}{d}", tuple(r.output_shape), r.params)
               for r, d in zip(rows, details, strict=True)]
    step = 1.75
    fig = _figure(max(10.0, step * len(blocks) * 0.95), 4.3)
    ax = fig.subplots()
    for i, (name, kind, shape, params) in enumerate(blocks):
        width, height = _block_size(shape)
        x = i * step
        colour = KIND_COLOURS.get(kind.split(",")[0], "#cccccc")
        ax.add_patch(Rectangle((x - width / 2, -height / 2), width, height,
                               facecolor=colour, edgecolor="#333333"))
        label = f"$\\bf{{{name.replace('_', chr(92) + '_')}}}$\n{kind}\n{shape}"
        if params is not None:
            label += f"\n{params:,} params"
        ax.text(x, -1.65, label, ha="center", va="top", fontsize=10, linespacing=1.4)
        if i:
            prev = (i - 1) * step + _block_size(blocks[i - 1][2])[0] / 2
            ax.add_patch(FancyArrowPatch((prev + 0.05, 0), (x - width / 2 - 0.05, 0),
                                         arrowstyle="-|>", mutation_scale=14, color="#555555"))
    ax.set_xlim(-step / 2, step * (len(blocks) - 0.5))
    ax.set_ylim(-2.75, 1.6)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=14)
    return fig
