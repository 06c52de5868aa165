"""The command line through main([...]): output, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest

from mnist_cnn.cli import main


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert "mnist-cnn" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    assert "--recipe" in capsys.readouterr().out


def test_train_help_gives_the_recipes_own_epochs(capsys):
    # The help is written out (building the parser must not import torch), so it is
    # checked against the recipe here.
    from mnist_cnn.config import RECIPES

    assert main(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"accurate (the same network, {RECIPES['accurate'].epochs} epochs" in help_text


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["summary", "--arch", "vgg"],
     "unknown architecture 'vgg'; choose one of: lesson, lesson-pool3"),
    (["train", "--dataset", "cifar"], "unknown dataset 'cifar'; choose one of: mnist"),
    (["train", "--recipe", "slow"], "unknown recipe 'slow'"),
    (["train", "--epochs", "0"], "--epochs must be an integer in 1.."),
    (["evaluate", "/nonexistent/run"], "no such run directory"),
    (["serve", "/nonexistent/run", "--workers", "0"], "--workers must be between 1 and 64"),
    (["serve", "/nonexistent/run"], "no such run directory"),
])
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_data_not_found_says_how_to_point_at_files(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MNIST_CNN_DATA", raising=False)
    from mnist_cnn import download

    def offline(*args, **kwargs):
        raise download.DownloadError("mnist: no network here")
    monkeypatch.setattr(download, "fetch_file", offline)
    assert main(["train", "--max-steps", "1", "--out", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    assert "mnist: no network here" in captured.err and "Traceback" not in captured.err
    assert "--data-dir DIR" in captured.err and captured.out == ""
    assert not (tmp_path / "run").exists()


def test_smoke_train_then_evaluate_agrees(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--max-steps", "20", "--recipe", "fast", "--data-dir", str(data_dir),
                 "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Model: "sequential"') and "Epoch 1/1" in out
    assert "313/313 - " not in out  # the fast recipe's batch is 128: 79 evaluation batches
    assert "79/79 - " in out
    meta = json.loads((run / "model.json").read_text())
    assert main(["evaluate", str(run), "--json", "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"], abs=1e-6)
    assert sum(map(sum, report["confusion_matrix"])) == 10000
