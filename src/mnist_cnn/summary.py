"""`model.summary()` as the lesson prints it (Keras 2 layout): compute, then render.

`summarize()` returns rows of data; `render_keras()` lays them out in 65 columns with
column edges at 29/55/65, cutting long cells the way Keras 2 cuts them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnist_cnn.layers import non_trainable
from mnist_cnn.model import Architecture

LINE_LENGTH = 65
COLUMN_ENDS = (29, 55, 65)  # int(65 * p) for Keras' positions (.45, .85, 1.)


@dataclass(frozen=True)
class LayerRow:
    name: str  # Keras auto-name, e.g. "conv2d_1"
    kind: str  # class name, e.g. "Conv2D"
    output_shape: tuple[int, ...]  # channels-last, no batch
    params: int
    non_trainable: int = 0  # BatchNormalization's moving statistics


@dataclass(frozen=True)
class Summary:
    model_name: str
    rows: tuple[LayerRow, ...]

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def non_trainable_params(self) -> int:
        return sum(row.non_trainable for row in self.rows)


def summarize(arch: Architecture, model_name: str = "sequential") -> Summary:
    """The summary's data: one row per layer with its Keras name, shape and parameters."""
    rows, shape = [], arch.input_shape
    for name, layer, out in zip(arch.keras_names(), arch.layers, arch.shapes(), strict=True):
        rows.append(LayerRow(name, type(layer).__name__, out, layer.params(shape),
                             non_trainable(layer, shape)))
        shape = out
    return Summary(model_name, tuple(rows))


def _row(cells: list[str]) -> str:
    # Keras 2's print_row: append each cell, cut at the column edge, pad; the last
    # character of a full column is replaced by a space before the next cell.
    line = ""
    for i, (cell, end) in enumerate(zip(cells, COLUMN_ENDS, strict=True)):
        if i > 0:
            line = line[:-1] + " "
        line = (line + cell)[:end]
        line += " " * (end - len(line))
    return line


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["None", *map(str, shape)]) + ")"


def render_keras(summary: Summary) -> str:
    """The summary table, character for character as Keras 2 prints it."""
    lines = [f'Model: "{summary.model_name}"', "_" * LINE_LENGTH,
             _row(["Layer (type)", "Output Shape", "Param #"]), "=" * LINE_LENGTH]
    for i, row in enumerate(summary.rows):
        lines.append(_row([f"{row.name} ({row.kind})", _shape_text(row.output_shape),
                           str(row.params)]))
        lines.append(("=" if i == len(summary.rows) - 1 else "_") * LINE_LENGTH)
    total, frozen = summary.total_params, summary.non_trainable_params
    lines += [f"Total params: {total:,}", f"Trainable params: {total - frozen:,}",
              f"Non-trainable params: {frozen:,}", "_" * LINE_LENGTH]
    return "\n".join(lines) + "\n"
