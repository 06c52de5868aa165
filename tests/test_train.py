"""The training loop: Keras' optimiser settings, recipes, smoke runs, stopping on NaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_mnist
from mnist_cnn.config import RECIPES, TrainConfig, planned_steps
from mnist_cnn.errors import TrainingError, UsageError
from mnist_cnn.model import count_params
from mnist_cnn.optimizers import OptimizerSpec
from mnist_cnn.train import fit, split_validation

ADAM_BETAS = (OptimizerSpec().beta_1, OptimizerSpec().beta_2)
ADAM_EPS = OptimizerSpec().epsilon


def _keras_adam(w, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """Keras' Adam update rule, written from its documentation, for a reference check."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    return w


def test_adam_matches_keras_defaults():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=50)
    grads = [rng.normal(size=50) * 10.0 ** rng.integers(-6, 1) for _ in range(20)]
    param = torch.nn.Parameter(torch.tensor(w0))
    spec = OptimizerSpec()
    opt = spec.build([param])
    for t, g in enumerate(grads, start=1):
        param.grad = torch.tensor(g)
        spec.step(opt, t)
    np.testing.assert_allclose(param.detach().numpy(), _keras_adam(w0, grads), rtol=1e-12,
                               atol=1e-15)


def test_the_default_recipe_is_the_lesson():
    recipe = TrainConfig().resolved_recipe()
    assert (recipe.epochs, recipe.batch_size, recipe.lr) == (5, 32, 1e-3)
    assert recipe.schedule == "constant" and recipe.precision == "fp32"
    assert ADAM_BETAS == (0.9, 0.999) and ADAM_EPS == 1e-7


def test_flags_override_the_recipe():
    recipe = TrainConfig(recipe="fast", epochs=7, lr=0.01).resolved_recipe()
    assert (recipe.epochs, recipe.lr, recipe.batch_size) == (7, 0.01, RECIPES["fast"].batch_size)


def test_fast_takes_its_share_of_an_epoch_and_epochs_ask_for_whole_ones():
    fast = TrainConfig(recipe="fast").resolved_recipe()
    assert planned_steps(fast, 60_000) == 376  # ceil(0.8 * 469)
    assert planned_steps(fast, 60_000, max_steps=5) == 5
    assert planned_steps(fast, 1) == 1
    assert planned_steps(TrainConfig(recipe="fast", epochs=2).resolved_recipe(), 60_000) == 938
    assert planned_steps(TrainConfig().resolved_recipe(), 60_000) == 5 * 1875
    x, y = tiny_mnist(1280)  # 10 steps of 128 in an epoch; the recipe takes 8 of them
    result = fit(TrainConfig(recipe="fast"), (x, y))
    assert result.steps == 8 and len(result.history) == 1
    assert result.hyperparameters["steps_share"] == 0.8


def test_unknown_recipe_lists_valid_ones():
    with pytest.raises(UsageError, match="lesson, fast"):
        TrainConfig(recipe="slow").resolved_recipe()


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_trains_the_lesson_network(recipe):
    x, y = tiny_mnist(1024)
    result = fit(TrainConfig(recipe=recipe, max_steps=3, epochs=1), (x, y))
    assert count_params(result.model) == 93322
    assert result.steps == 3 and len(result.history) == 1
    assert np.isfinite(result.history[0]["loss"])


def test_max_steps_stops_early_and_validation_is_reported():
    x, y = tiny_mnist(256)
    (xt, yt), val = split_validation(x, y, 0.25)
    assert len(xt) == 192 and np.array_equal(val[0], x[-64:])
    result = fit(TrainConfig(max_steps=4, batch_size=16), (xt, yt), val)
    assert result.steps == 4
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(result.history[0])


def test_same_seed_same_training():
    x, y = tiny_mnist(128)
    a = fit(TrainConfig(max_steps=5, batch_size=16, seed=1), (x, y)).model.state_dict()
    b = fit(TrainConfig(max_steps=5, batch_size=16, seed=1), (x, y)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_training():
    x, y = tiny_mnist(128)
    saved = []
    with pytest.raises(TrainingError, match="non-finite"):
        fit(TrainConfig(lr=1e12, epochs=3, batch_size=16), (x, y), on_epoch=saved.append)
    assert saved == []  # nothing after a non-finite epoch is offered for saving


def test_bad_validation_split_is_a_usage_error():
    x, y = tiny_mnist(16)
    with pytest.raises(UsageError):
        split_validation(x, y, 1.5)


def test_resume_accepts_flags_that_restate_the_runs_settings():
    from mnist_cnn.run import check_resume

    saved = TrainConfig(batch_size=16)  # epochs left to the recipe (5)
    check_resume(TrainConfig(epochs=5, batch_size=16), saved, {"epochs", "batch_size"})
    with pytest.raises(TrainingError, match="--epochs 6 \\(run has 5\\)"):
        check_resume(TrainConfig(epochs=6), saved, {"epochs"})
