"""Saliency: integrated gradients add up to the logit change (completeness), gradient x input
is the autograd gradient times the input, and both explain the class they are asked for."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_cnn.model import build_model
from mnist_cnn.saliency import gradient_x_input, integrated_gradients


@pytest.fixture(scope="module")
def digits(mnist):
    """The first 8 real test digits as (8, 1, 28, 28) floats and their labels."""
    images, labels = mnist[1]
    return torch.tensor(images[:8], dtype=torch.float32)[:, None] / 255.0, labels[:8]


@pytest.fixture(scope="module")
def trained(trained_run):
    from mnist_cnn.checkpoint import load_model

    return load_model(trained_run)[0].eval()


def _check_completeness(model: nn.Module, x: torch.Tensor, steps: int, target=None) -> None:
    ig = integrated_gradients(model, x, target=target, steps=steps)
    with torch.no_grad():
        logits, base = model(x), model(torch.zeros_like(x))
    chosen = ig.target[:, None]
    delta = (logits.gather(1, chosen) - base.gather(1, chosen))[:, 0]
    total = ig.values.flatten(1).sum(1)
    assert delta.abs().min() > 0.5  # a real change to explain, not 0 = 0
    relative = (total - delta).abs() / delta.abs()
    assert relative.max() < 0.01, relative
    assert torch.allclose(ig.completeness_error(), relative, atol=1e-5)


def test_integrated_gradients_complete_on_the_trained_network(trained, digits):
    x, _ = digits
    _check_completeness(trained, x, steps=256)


@pytest.mark.parametrize("arch", ["lesson", "lesson-pool3"])
def test_integrated_gradients_complete_for_any_class_and_architecture(arch, digits):
    x, labels = digits
    model = build_model(arch, seed=1).eval()
    with torch.no_grad():  # untrained logits barely move; scaling the last layer (the net is
        # piecewise linear) makes the change to explain large without changing its shape
        list(model.layers.values())[-1].weight.mul_(100)
    # Explain a class the untrained network did not pick: the class after the label.
    _check_completeness(model, x, steps=256, target=torch.tensor((labels + 1) % 10))


def test_integrated_gradients_are_exact_for_a_linear_model(digits):
    """For f(x) = Wx + b the gradient is W everywhere: IG = x * W[target] with any steps."""
    x, _ = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    target = torch.arange(8) % 10
    ig = integrated_gradients(model, x, target=target, steps=1)
    expected = x * model[1].weight[target].reshape(8, 1, 28, 28)
    assert torch.allclose(ig.values, expected, atol=1e-6)
    assert ig.completeness_error().max() < 1e-4


def test_gradient_x_input_equals_an_autograd_reference(trained, digits):
    x, _ = digits
    attribution = gradient_x_input(trained, x)
    for i in range(len(x)):  # one image at a time, the plain autograd way
        xi = x[i:i + 1].clone().requires_grad_(True)
        target = int(attribution.target[i])
        trained(xi)[0, target].backward()
        reference = xi.grad * xi.detach()
        assert torch.allclose(attribution.values[i:i + 1], reference, atol=1e-6, rtol=0)


def test_default_target_is_the_prediction(trained, digits):
    x, labels = digits
    with torch.no_grad():
        predicted = trained(x).argmax(1)
    assert torch.equal(integrated_gradients(trained, x, steps=4).target, predicted)
    assert torch.equal(gradient_x_input(trained, x).target, predicted)
    assert (predicted.numpy() == labels).all()  # the trained network reads these 8 digits


def test_attributions_vanish_where_there_is_no_ink(trained, digits):
    """A black baseline: a pixel equal to the baseline gets exactly zero attribution."""
    x, _ = digits
    for attribution in (integrated_gradients(trained, x, steps=8), gradient_x_input(trained, x)):
        assert torch.all(attribution.values[x == 0] == 0)
        assert attribution.values.abs().sum() > 0
