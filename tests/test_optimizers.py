"""SGD and RMSprop take exactly Keras' steps (Adam's reference test is in test_train.py).

The references below are Keras' update rules written out in numpy from its documentation
and source: SGD keeps a velocity that already holds the learning rate; RMSprop divides by
sqrt(v + epsilon)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_cnn.errors import UsageError
from mnist_cnn.optimizers import OptimizerSpec


def _keras_sgd(w, grads, lrs, momentum=0.0, nesterov=False):
    m = np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        if momentum == 0:
            w = w - lr * g
            continue
        m = m * momentum - g * lr
        w = w + (m * momentum - g * lr if nesterov else m)
    return w


def _keras_rmsprop(w, grads, lrs, rho=0.9, momentum=0.0, eps=1e-7):
    v, mom = np.zeros_like(w), np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        v = rho * v + (1 - rho) * g * g
        step = lr * g / np.sqrt(v + eps)
        if momentum > 0:
            mom = momentum * mom + step
            step = mom
        w = w - step
    return w


def _run(spec: OptimizerSpec, w0, grads, lrs):
    param = torch.nn.Parameter(torch.tensor(w0))
    opt = spec.build([param])
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        for group in opt.param_groups:
            group["lr"] = lr  # as a learning-rate schedule sets it
        param.grad = torch.tensor(g)
        spec.step(opt, t)
    return param.detach().numpy()


@pytest.fixture()
def problem():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=40)
    grads = [rng.normal(size=40) * 10.0 ** rng.integers(-4, 1) for _ in range(25)]
    lrs = list(np.linspace(0.05, 0.001, 25))  # a changing rate: the rules differ under it
    return w0, grads, lrs


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_keras(problem, momentum, nesterov):
    w0, grads, lrs = problem
    got = _run(OptimizerSpec("sgd", 0.01, momentum=momentum, nesterov=nesterov), w0, grads, lrs)
    np.testing.assert_allclose(got, _keras_sgd(w0, grads, lrs, momentum, nesterov),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rho, momentum", [(0.9, 0.0), (0.8, 0.5)])
def test_rmsprop_matches_keras(problem, rho, momentum):
    w0, grads, lrs = problem
    got = _run(OptimizerSpec("rmsprop", 1e-3, rho=rho, momentum=momentum), w0, grads, lrs)
    np.testing.assert_allclose(got, _keras_rmsprop(w0, grads, lrs, rho, momentum),
                               rtol=1e-12, atol=1e-14)


def test_rmsprop_differs_from_torchs_own_rule(problem):
    """The check can fail: torch's RMSprop (sqrt(v) + eps) is not Keras' rule."""
    w0, grads, lrs = problem
    param = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.RMSprop([param], lr=1e-3, alpha=0.9, eps=1e-7)
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    keras = _keras_rmsprop(w0, grads, [1e-3] * len(grads))
    assert not np.allclose(param.detach().numpy(), keras, rtol=1e-12, atol=1e-14)


def test_named_optimizers_have_keras_defaults():
    assert OptimizerSpec.named("sgd").learning_rate == 0.01
    assert OptimizerSpec.named("rmsprop") == OptimizerSpec("rmsprop", 1e-3, rho=0.9)
    assert OptimizerSpec.named("adam") == OptimizerSpec("adam", 1e-3, 0.9, 0.999, 1e-7)


@pytest.mark.parametrize("kwargs", [{"name": "adagrad"}, {"learning_rate": -1.0},
                                    {"learning_rate": float("nan")}, {"momentum": 1.5}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(UsageError):
        OptimizerSpec(**{"name": "sgd", "learning_rate": 0.01, **kwargs})
