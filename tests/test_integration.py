"""The lesson and the fast recipe on real MNIST, end to end, and their saved runs."""

from __future__ import annotations

import json

import pytest

from mnist_cnn.cli import main
from mnist_cnn.model import ARCHITECTURES, count_params


@pytest.fixture(scope="module")
def lesson_run(data_dir, tmp_path_factory):
    """One epoch of the lesson's own recipe (batch 32, Adam 1e-3, fp32), through the CLI."""
    run = tmp_path_factory.mktemp("lesson") / "run"
    assert main(["train", "--epochs", "1", "--data-dir", str(data_dir), "--out", str(run)]) == 0
    return run


@pytest.mark.slow
def test_one_epoch_of_the_lesson_reaches_98_percent(lesson_run):
    meta = json.loads((lesson_run / "model.json").read_text())
    assert meta["metrics"]["test_accuracy"] >= 0.98
    assert meta["hyperparameters"]["batch_size"] == 32 and meta["timing"]["precision"] == "fp32"
    assert meta["timing"]["steps"] == 1875
    assert (lesson_run / "history.csv").read_text().startswith("epoch,loss,accuracy")
    assert (lesson_run / "summary.txt").read_text().endswith("Non-trainable params: 0\n" +
                                                             "_" * 65 + "\n")


@pytest.mark.slow
def test_evaluate_reproduces_the_trained_accuracy(lesson_run, data_dir, capsys):
    meta = json.loads((lesson_run / "model.json").read_text())
    assert main(["evaluate", str(lesson_run), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {meta['metrics']['test_accuracy']:.2%}" in out
    assert "confusion matrix" in out


@pytest.mark.slow
def test_the_fast_recipe_is_the_lesson_network_and_reaches_99_percent(trained_run, data_dir,
                                                                       capsys):
    from mnist_cnn.checkpoint import load_model

    model, meta = load_model(trained_run)
    assert model.arch == ARCHITECTURES["lesson"] and count_params(model) == 93322
    assert meta.recipe == "fast" and meta.hyperparameters["epochs"] == 1
    assert meta.metrics["test_accuracy"] >= 0.988
    assert main(["evaluate", str(trained_run), "--json", "--data-dir", str(data_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(
        meta.metrics["test_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_fashion_mnist_trains_end_to_end(data_dir, tmp_path, capsys):
    run = tmp_path / "fashion"
    assert main(["train", "--dataset", "fashion-mnist", "--recipe", "fast",
                 "--data-dir", str(data_dir), "--out", str(run)]) == 0
    meta = json.loads((run / "model.json").read_text())
    assert meta["dataset"] == "fashion-mnist"
    assert meta["metrics"]["test_accuracy"] >= 0.85  # one fast epoch; 5 lesson epochs: ~91%
    assert main(["evaluate", str(run), "--data-dir", str(data_dir)]) == 0
    assert "Ankle boot" in capsys.readouterr().out
