"""Four architectures beyond the lesson's, trained by real Keras (../shared/fixtures/keras):
'same' padding, strides, 5x5 and rectangular kernels, average pooling, tanh and sigmoid,
BatchNormalization and Dropout. Imported, our network gives Keras' probabilities, and our
summary gives Keras' layer names, shapes and parameter counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn.interop import import_keras
from mnist_cnn.predict import Predictor
from mnist_cnn.summary import summarize

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "keras"
NAMES = ["same_strides", "avgpool_tanh", "batchnorm_dropout", "rect_kernel_samepool"]


def _keras_rows(text: str) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, output shape, params) for each layer of Keras 3's boxed summary."""
    rows, name = [], None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")] if line.startswith("│") else []
        if len(cells) != 3:
            continue
        if cells[1].startswith("(None"):
            name = cells[0].split(" (")[0]
            shape = tuple(int(d) for d in re.findall(r"\d+", cells[1]))
            rows.append((name, shape, int(cells[2].replace(",", ""))))
    return rows


def _keras_totals(text: str) -> tuple[int, int]:
    trainable = re.search(r"Trainable params: ([\d,]+)", text).group(1)
    frozen = re.search(r"Non-trainable params: ([\d,]+)", text).group(1)
    return int(trainable.replace(",", "")), int(frozen.replace(",", ""))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_imported_keras_models_give_keras_probabilities(name, suffix, mnist):
    model = import_keras(FIXTURES / f"{name}{suffix}")
    _, (x_test, _) = mnist
    probs = Predictor(model).probabilities(x_test[:1000])
    expected = np.load(FIXTURES / f"{name}_probs_test1000.npy")
    np.testing.assert_allclose(probs, expected, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_summary_gives_keras_names_shapes_and_parameter_counts(name):
    model = import_keras(FIXTURES / f"{name}.keras")
    text = (FIXTURES / f"{name}_summary.txt").read_text(encoding="utf-8")
    ours = summarize(model.arch)
    assert [(r.name, r.output_shape, r.params) for r in ours.rows] == _keras_rows(text)
    total = ours.total_params
    assert (total - ours.non_trainable_params, ours.non_trainable_params) == _keras_totals(text)
    fixture = json.loads((FIXTURES / "fixtures.json").read_text())[name]
    assert total == fixture["count_params"]


def test_the_parser_reads_a_known_summary():
    text = (FIXTURES / "avgpool_tanh_summary.txt").read_text(encoding="utf-8")
    rows = _keras_rows(text)
    assert rows[0] == ("conv2d", (26, 26, 8), 80) and len(rows) == 7
    assert _keras_totals(text) == (14410, 0)
