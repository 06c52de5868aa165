"""The `accurate` recipe: the lesson's network on distorted images, resumable, and accurate."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from conftest import tiny_mnist
from mnist_cnn.config import RECIPES, TrainConfig
from mnist_cnn.errors import ModelFileError
from mnist_cnn.evaluate import evaluate
from mnist_cnn.model import ARCHITECTURES, count_params
from mnist_cnn.train import fit


def test_accurate_distorts_its_batches_and_the_other_recipes_do_not():
    assert RECIPES["accurate"].augment is not None and RECIPES["accurate"].augment.active
    assert all(RECIPES[name].augment is None for name in ("lesson", "fast"))


def test_the_augmentation_stream_is_saved_and_needed_to_resume():
    states = []
    cfg = TrainConfig(recipe="accurate", epochs=2, batch_size=32, device="cpu")
    fit(cfg, tiny_mnist(64), on_epoch=states.append)
    assert isinstance(states[0].augment_rng, torch.Tensor)
    assert not torch.equal(states[0].augment_rng, states[1].augment_rng)  # it advanced
    states[0] = replace(states[0], augment_rng=None)  # as a checkpoint without it would load
    with pytest.raises(ModelFileError, match="does not fit this run"):
        fit(cfg, tiny_mnist(64), state=states[0])


@pytest.mark.parametrize("until, distorted", [(1.0, 4), (0.5, 2), (0.0, 0)])
def test_only_the_first_share_of_the_steps_is_distorted(monkeypatch, until, distorted):
    batches = []
    monkeypatch.setattr("mnist_cnn.train.random_distort",
                        lambda x, aug, g: batches.append(len(x)) or x)
    accurate = RECIPES["accurate"]
    monkeypatch.setitem(RECIPES, "accurate",
                        replace(accurate, augment=replace(accurate.augment, until=until)))
    cfg = TrainConfig(recipe="accurate", epochs=2, batch_size=32, device="cpu")
    assert fit(cfg, tiny_mnist(64)).steps == 4
    assert batches == [32] * distorted


@pytest.mark.slow
def test_a_short_accurate_run_on_real_mnist_clears_its_floor(mnist):
    # 300 steps (0.64 of an epoch, the whole one-cycle schedule compressed into them, the
    # last 50 on clean images) gave 98.89%, 99.02%, 98.81% test accuracy for seeds 0, 1, 2;
    # the floor leaves 0.3 points.
    steps, floor = 300, 0.985
    (x, y), (xt, yt) = mnist
    result = fit(TrainConfig(recipe="accurate", max_steps=steps, seed=0, device="cpu"), (x, y))
    assert result.model.arch == ARCHITECTURES["lesson"] and count_params(result.model) == 93322
    accuracy = evaluate(result.model, xt, yt, result.precision).accuracy
    assert accuracy >= floor, f"{steps} steps of the accurate recipe: {accuracy:.4f}"
