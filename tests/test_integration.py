"""The lesson on real MNIST, end to end (1 epoch), and its saved run."""

from __future__ import annotations

import json

import pytest

from mnist_cnn.cli import main


@pytest.mark.slow
def test_one_epoch_of_the_lesson_reaches_98_percent(trained_run):
    meta = json.loads((trained_run / "model.json").read_text())
    assert meta["metrics"]["test_accuracy"] >= 0.98
    assert meta["hyperparameters"]["batch_size"] == 32
    assert meta["timing"]["steps"] == 1875
    assert (trained_run / "history.csv").read_text().startswith("epoch,loss,accuracy")
    assert (trained_run / "summary.txt").read_text().endswith("Non-trainable params: 0\n" +
                                                              "_" * 65 + "\n")


@pytest.mark.slow
def test_evaluate_reproduces_the_trained_accuracy(trained_run, data_dir, capsys):
    meta = json.loads((trained_run / "model.json").read_text())
    assert main(["evaluate", str(trained_run), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {meta['metrics']['test_accuracy']:.2%}" in out
    assert "confusion matrix" in out


@pytest.mark.slow
def test_the_fast_recipe_is_the_lesson_network_and_reaches_99_percent(mnist):
    from mnist_cnn.evaluate import evaluate
    from mnist_cnn.model import ARCHITECTURES, count_params
    from mnist_cnn.train import TrainConfig, fit

    (x_train, y_train), (x_test, y_test) = mnist
    result = fit(TrainConfig(recipe="fast", seed=0), (x_train, y_train))
    assert result.model.arch == ARCHITECTURES["seed"] and count_params(result.model) == 93322
    assert result.hyperparameters["epochs"] == 1
    accuracy = evaluate(result.model, x_test, y_test).accuracy
    assert accuracy >= 0.988, f"fast recipe reached only {accuracy:.4f}"
