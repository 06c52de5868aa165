"""Each saved format: a round trip, a bad value refused with a clear error, and the files of
earlier versions (tests/corpus/v1: a run and an interrupted run written by mnist-cnn 0.1.0
before any-architecture support) still read."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import tiny_mnist
from mnist_cnn import checkpoint
from mnist_cnn.checkpoint import RunMeta, Timing, TrainState
from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import ModelFileError
from mnist_cnn.model import get_architecture
from mnist_cnn.train import fit

V1 = Path(__file__).parent / "corpus" / "v1"


def _meta() -> RunMeta:
    return RunMeta(architecture=get_architecture("lesson-pool3"), dataset="fashion-mnist",
                   recipe="fast", hyperparameters={"batch_size": 128, "betas": [0.9, 0.999]},
                   metrics={"test_accuracy": 0.99, "test_loss": 0.03},
                   timing=Timing(6.5, 469, "cpu", "bf16"), versions={"torch": "2.13.0"},
                   date="2026-11-29T12:00:00+0000", config=TrainConfig(recipe="fast", seed=3),
                   source={"keras_file": "x.keras"})


def test_run_meta_round_trips_through_json():
    meta = _meta()
    assert RunMeta.from_dict(json.loads(json.dumps(meta.to_dict()))) == meta


@pytest.mark.parametrize("key, value, message", [
    ("dataset", [], "dataset must be a string"),
    ("timing", [], "timing must be an object"),
    ("hyperparameters", [1], "hyperparameters must be an object"),
    ("timing", {"train_seconds": "x"}, "train_seconds 'x' is not a duration"),
    ("metrics", {"test_accuracy": "high"}, "metrics must all be numbers"),
    ("format_version", 99, "format_version 99"),
    ("surprise", 1, "unknown keys surprise"),
    ("config", {"recipe": "seed", "batch_size": 0}, "batch-size must be an integer"),
])
def test_run_meta_refuses_bad_values(key, value, message):
    data = {**_meta().to_dict(), key: value}
    with pytest.raises(ModelFileError, match=message):
        RunMeta.from_dict(data)


def _state() -> TrainState:
    states: list[TrainState] = []
    fit(TrainConfig(max_steps=2, batch_size=16, device="cpu"), tiny_mnist(32),
        on_epoch=states.append)
    return states[-1]


def test_train_state_round_trips_through_its_file(tmp_path):
    state = _state()
    checkpoint.save_state(tmp_path, state)
    loaded = checkpoint.load_state(tmp_path)
    assert (loaded.epoch, loaded.steps, loaded.history, loaded.config) == (
        state.epoch, state.steps, state.history, state.config)
    assert all(torch.equal(loaded.model[k], state.model[k]) for k in state.model)
    assert torch.equal(loaded.torch_rng, state.torch_rng)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["config"].update(batch_size=0), "batch-size must be an integer"),
    (lambda d: d["config"].update(lr=math.nan), "--lr must be a finite number"),
    (lambda d: d["config"].update(seed=2**70), "--seed must be an integer"),
    (lambda d: d.update(steps=-10**9), "out of range"),
    (lambda d: d.update(history=["a", "b"]), "history is not a list of per-epoch numbers"),
    (lambda d: d.update(train_seconds=math.inf), "out of range"),
    (lambda d: d.update(epoch=True), "mistyped: epoch"),
])
def test_train_state_refuses_bad_values(tmp_path, change, message):
    data = _state().to_dict()
    change(data)
    checkpoint.save_state(tmp_path, data)
    with pytest.raises(ModelFileError, match=message):
        checkpoint.load_state(tmp_path)


def test_history_round_trips_and_refuses_damage(tmp_path):
    rows = [{"epoch": 1.0, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.91}]
    checkpoint.write_history(tmp_path, rows)
    assert checkpoint.read_history(tmp_path) == rows
    for text in ("epoch,loss\nnan,0.5\n", "loss,accuracy\n0.5,0.9\n", "epoch,loss\n1,x\n"):
        (tmp_path / checkpoint.HISTORY).write_text(text)
        with pytest.raises(ModelFileError, match="damaged history"):
            checkpoint.read_history(tmp_path)


def test_a_run_written_by_the_earlier_version_still_loads(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(V1 / "run", run)
    assert json.loads((run / "model.json").read_text())["architecture"]["name"] == "seed"
    model, meta = checkpoint.load_model(run)
    assert meta.architecture.name == "lesson" and meta.config.recipe == "lesson"
    assert meta.architecture == get_architecture("lesson") and len(meta.metrics) > 0
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert checkpoint.read_history(run)[0]["epoch"] == 1.0


def test_a_checkpoint_written_by_the_earlier_version_resumes(tmp_path):
    shutil.copytree(V1 / "interrupted", tmp_path / "run")
    state = checkpoint.load_state(tmp_path / "run")
    assert state.epoch == 1 and state.torch_rng is None
    assert state.config.arch == get_architecture("lesson-pool3")
    cfg = replace(state.config, device="cpu")
    result = fit(cfg, tiny_mnist(640), state=state)
    assert result.steps == 40 and [row["epoch"] for row in result.history] == [1, 2]
