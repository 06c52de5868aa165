"""The summary table against the lesson's text, kept as golden files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_cnn.cli import main
from mnist_cnn.model import ARCHITECTURES, conv_base
from mnist_cnn.summary import COLUMN_ENDS, render_keras, summarize

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("argv, golden", [
    (["summary"], "summary_seed.txt"),
    (["summary", "--conv-only"], "summary_conv_only.txt"),
    (["summary", "--arch", "lesson-pool3"], "summary_seed_pool3.txt"),
])
def test_cli_summary_matches_the_lesson(argv, golden, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out == (GOLDEN / golden).read_text()


def test_rows_are_padded_to_65_columns():
    text = render_keras(summarize(ARCHITECTURES["lesson"]))
    rows = [line for line in text.splitlines() if line.startswith(("conv", "max", "dense"))]
    assert rows and all(len(row) == COLUMN_ENDS[-1] for row in rows)


def test_long_names_are_cut_as_keras_cuts_them():
    text = render_keras(summarize(conv_base(ARCHITECTURES["lesson"])))
    assert "max_pooling2d_1 (MaxPooling2 (None, 5, 5, 64)" in text


def test_summary_data_is_separate_from_rendering():
    summary = summarize(ARCHITECTURES["lesson"])
    assert summary.total_params == 93322
    assert [row.name for row in summary.rows] == [
        "conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2", "flatten",
        "dense", "dense_1"]
