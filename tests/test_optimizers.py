"""SGD and RMSprop take exactly Keras' steps (Adam's reference test is in test_train.py).

The references below are Keras' update rules written out in numpy from its documentation
and source: SGD keeps a velocity that already holds the learning rate; RMSprop divides by
sqrt(v + epsilon)."""

from __future__ import annotations

import io

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


@pytest.mark.parametrize("spec", [OptimizerSpec(), OptimizerSpec("sgd", 0.01, momentum=0.9),
                                  OptimizerSpec("rmsprop", 1e-3, momentum=0.5)],
                         ids=["adam", "sgd", "rmsprop"])
def test_a_saved_optimiser_goes_on_exactly(problem, spec):
    """Six steps in one go equal three, a state_dict round trip into a new optimiser, and
    three more: what a resumed checkpoint relies on."""
    w0, grads, lrs = problem
    straight = _run(spec, w0, grads[:6], lrs[:6])
    param = torch.nn.Parameter(torch.tensor(w0))
    first = spec.build([param])
    for t in range(1, 4):
        param.grad = torch.tensor(grads[t - 1])
        first.param_groups[0]["lr"] = lrs[t - 1]
        spec.step(first, t)
    saved = torch.load(_roundtrip(first.state_dict()), weights_only=True)
    second = spec.build([param])
    second.load_state_dict(saved)
    for t in range(4, 7):
        param.grad = torch.tensor(grads[t - 1])
        second.param_groups[0]["lr"] = lrs[t - 1]
        spec.step(second, t)
    np.testing.assert_array_equal(param.detach().numpy(), straight)


def _roundtrip(state: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_adam_state_saved_by_torchs_own_adam_loads(problem):
    """Earlier versions stepped torch.optim.Adam (with Keras' epsilon adjusted each step):
    its state_dict loads, and the next step is Keras' rule from that state."""
    w0, grads, _ = problem
    param = torch.nn.Parameter(torch.tensor(w0))
    old = torch.optim.Adam([param], lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    for g in grads[:3]:
        param.grad = torch.tensor(g)
        old.step()
    state = old.state_dict()
    m, v = (state["state"][0][k].numpy().copy() for k in ("exp_avg", "exp_avg_sq"))
    w = param.detach().numpy().copy()
    spec = OptimizerSpec()
    new = spec.build([param])
    new.load_state_dict(state)
    param.grad = torch.tensor(grads[3])
    spec.step(new, 4)
    g = grads[3]
    m, v = m + (g - m) * 0.1, v + (g * g - v) * 0.001
    expected = w - 1e-3 * np.sqrt(1 - 0.999**4) / (1 - 0.9**4) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-15)


def test_a_state_of_another_model_is_refused():
    spec = OptimizerSpec()
    big = spec.build([torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))])
    big.param_groups[0]["params"][0].grad = torch.ones(3)
    spec.step(big, 1)
    small = spec.build([torch.nn.Parameter(torch.zeros(4))])
    with pytest.raises(ValueError, match="2 parameters, the model 1"):
        small.load_state_dict(big.state_dict())
    wrong_shape = spec.build([torch.nn.Parameter(torch.zeros(4)),
                              torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="does not fit"):
        wrong_shape.load_state_dict(big.state_dict())
