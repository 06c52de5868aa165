"""The run report: figures exist, are readable PNGs, and show what the model really does."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_cnn import data
from mnist_cnn.cli import main
from mnist_cnn.report import MISTAKES_SHOWN, RIGHT_PER_CLASS

FIGURES = {"curves", "confusion", "mistakes", "right", "filters", "architecture",
           *(f"feature_maps_{c}" for c in range(10)), "saliency_mistakes", "saliency_examples",
           "reliability", "robustness", "robustness_examples"}


@pytest.fixture(scope="module")
def report(written_report):
    return written_report


@pytest.fixture(scope="module")
def test_set(data_dir):
    return data.load_data("mnist", data_dir)[1]


def test_every_figure_is_a_readable_png(report):
    assert set(report.figures) == FIGURES
    for stem, path in report.figures.items():
        assert path.parent == report.out_dir and path.name == f"{stem}.png"
        with Image.open(path) as image:
            assert image.format == "PNG"
            image.load()  # decodes the whole file: a truncated PNG fails here
            width, height = image.size
        assert width >= 600 and 200 <= height <= 4000, (stem, image.size)


def test_confusion_matrix_is_the_models_on_the_whole_test_set(report, trained_run, test_set):
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.evaluate import evaluate

    confusion = report.data.metrics.confusion
    assert confusion.sum() == len(test_set[1]) == report.test_count == 10_000
    assert np.array_equal(confusion.sum(1), np.bincount(test_set[1], minlength=10))
    saved = json.loads((trained_run / "model.json").read_text())["metrics"]["test_accuracy"]
    assert np.trace(confusion) / confusion.sum() == pytest.approx(saved, abs=1e-6)
    assert report.test_accuracy == pytest.approx(saved, abs=1e-6)
    model, _ = load_model(trained_run)
    assert np.array_equal(confusion, evaluate(model, *test_set).confusion)


@pytest.fixture(scope="module")
def run_probabilities(trained_run, test_set) -> np.ndarray:
    """Test-set probabilities computed independently of the report, in the run's own
    precision as the report computes them (a bf16 run's answers differ from fp32's in the
    third decimal, and a borderline digit can change class)."""
    import torch

    from mnist_cnn.device import to_tensors, use_bf16
    from mnist_cnn.evaluate import predict_logits
    from mnist_cnn.predict import Predictor

    images, labels = test_set
    predictor = Predictor.from_run(trained_run)
    x, _ = to_tensors(images, labels, torch.device("cpu"), channels_last=True)
    bf16 = use_bf16(predictor.meta.timing.precision, torch.device("cpu"))
    return torch.softmax(predict_logits(predictor.model, x, bf16=bf16).float(), 1).numpy()


def test_every_mistake_shown_is_misclassified(report, run_probabilities, test_set):
    _, labels = test_set
    mistakes = report.data.mistakes
    wrong = report.test_count - int(np.trace(report.data.metrics.confusion))
    assert len(mistakes) == min(MISTAKES_SHOWN, wrong) > 0
    indices = [m.index for m in mistakes]
    probabilities = run_probabilities[indices]
    predicted = probabilities.argmax(1)
    assert np.all(predicted != labels[indices])
    assert [m.true for m in mistakes] == labels[indices].tolist()
    assert [m.predicted for m in mistakes] == predicted.tolist()
    shown = [m.probability for m in mistakes]
    assert np.allclose(shown, probabilities.max(1), atol=1e-4)
    assert shown == sorted(shown, reverse=True)  # the most confident first


def test_the_right_answers_shown_are_each_classs_first_right_ones(report, run_probabilities,
                                                                 test_set):
    _, labels = test_set
    right = report.data.right
    predicted = run_probabilities.argmax(1)
    want = [int(np.flatnonzero((labels == c) & (predicted == c))[rank])
            for rank in range(RIGHT_PER_CLASS) for c in range(10)]
    assert [r.index for r in right] == want  # a row of firsts, then a row of seconds
    assert all(r.true == r.predicted == labels[r.index] for r in right)
    assert all(0.0 < r.probability <= 1.0 for r in right)


def test_filters_shown_are_the_models_weights(report, trained_run):
    from safetensors.numpy import load_file

    weights = load_file(str(trained_run / "model.safetensors"))["layers.conv2d.weight"]
    assert report.data.filters.shape == (32, 3, 3)
    assert np.array_equal(report.data.filters, weights[:, 0])


def test_feature_maps_are_one_correct_digit_per_class(report, test_set):
    images, labels = test_set
    examples = report.data.examples
    assert [e.true for e in examples] == list(range(10))
    for e in examples:
        assert labels[e.index] == e.true and e.probabilities.argmax() == e.true
        assert [out.name for out in e.layers] == ["conv2d", "max_pooling2d", "conv2d_1",
                                                  "max_pooling2d_1", "conv2d_2"]
        for out in e.layers:  # Keras shape (H, W, C), values (C, H, W)
            assert out.values.shape == (out.shape[2], out.shape[0], out.shape[1])


def test_index_html_shows_every_figure_from_disk(report):
    page = report.html.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    # Every figure once in each language's view.
    assert sorted(sources) == sorted(2 * [f"{stem}.png" for stem in FIGURES])
    for src in sources:
        assert (report.html.parent / src).is_file()
    assert "Total params: 93,322" in page and "conv2d_2 (Conv2D)" in page
    assert f"{report.test_accuracy:.2%}" in page


def test_report_md_has_the_headline_numbers(report):
    text = report.markdown.read_text()
    assert f"| test accuracy | {report.test_accuracy:.2%}" in text
    assert f"| test loss | {report.test_loss:.4f} |" in text
    wrong = report.test_count - int(np.trace(report.data.metrics.confusion))
    assert f"| test mistakes | {wrong:,} |" in text
    for path in report.figures.values():
        assert f"]({path.name})" in text


def test_the_report_has_the_model_card(report, trained_run):
    from mnist_cnn.checkpoint import read_meta

    card = (report.out_dir / "MODEL_CARD.md").read_text()
    accuracy = read_meta(trained_run).metrics["test_accuracy"]
    assert card.startswith("---\n") and "model-index:" in card
    assert f"value: {round(accuracy, 6)}" in card and f"**{accuracy:.2%}**" in card
    assert "## Evaluation" in card and "Per-class accuracy (" in card


def test_curves_handle_many_epochs_with_validation():
    from mnist_cnn.figures import training_curves

    history = [{"epoch": e, "loss": 1 / e, "accuracy": 1 - 0.1 / e,
                "val_loss": 1.1 / e, "val_accuracy": 1 - 0.12 / e} for e in range(1, 6)]
    fig = training_curves(history, 0.3, 0.97)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == ["training (last 98.00%)", "validation (last 97.60%)", "test (97.00%)"]


def test_cli_report_writes_into_the_run(trained_run, data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "history.csv").unlink()  # an older run without history: no curves, the rest stands
    assert main(["report", str(run), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert (run / "report" / "index.html").is_file() and (run / "report" / "report.md").is_file()
    assert str(run / "report" / "index.html") in out
    pngs = {p.stem for p in (run / "report").glob("*.png")}
    assert pngs == FIGURES - {"curves"}
    assert 'src="curves.png"' not in (run / "report" / "index.html").read_text()


@pytest.mark.parametrize("argv, message", [
    (["report", "/nonexistent/run"], "no such run directory"),
    (["report"], "the following arguments are required: RUN"),
    (["report", "RUN", "--out", "FILE"], "exists and is not a directory"),
])
def test_cli_report_bad_input_is_one_clear_line(argv, message, trained_run, tmp_path, capsys):
    (tmp_path / "FILE").write_text("not a folder")
    argv = [{"RUN": str(trained_run), "FILE": str(tmp_path / "FILE")}.get(a, a) for a in argv]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("mnist-cnn")]) == 1


def test_train_with_report_flag(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--recipe", "fast", "--max-steps", "5", "--report",
                 "--data-dir", str(data_dir), "--out", str(run)]) == 0
    assert (run / "report" / "index.html").is_file()
    assert Path(run / "report" / "confusion.png").is_file()
    assert "report" in capsys.readouterr().out
