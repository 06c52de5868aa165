"""Robustness: each perturbation does what it says to known images, a zero perturbation is
the identity, FGSM raises the loss, and the sweep's accuracies are the model's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_cnn.robustness import (
    LEVELS,
    fgsm,
    gaussian_noise,
    loss_gradient,
    perturb,
    rotate,
    shift,
    sweep,
    thickness,
)


def _dot(row: int, col: int, n: int = 1) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, 0, row, col] = 1.0
    return x


@pytest.fixture(scope="module")
def subset(mnist):
    images, labels = mnist[1]
    x = torch.tensor(images[:300], dtype=torch.float32)[:, None] / 255.0
    return x, torch.tensor(labels[:300], dtype=torch.int64)


@pytest.fixture(scope="module")
def trained(trained_run):
    from mnist_cnn.checkpoint import load_model

    return load_model(trained_run)[0].eval()


@pytest.mark.parametrize("family", sorted(LEVELS))
def test_level_zero_is_the_identity(family, subset):
    x, _ = subset
    gradient = torch.randn_like(x)
    assert torch.equal(perturb(family, 0, x, gradient), x)


def test_shift_moves_a_pixel_where_expected():
    moved = shift(_dot(10, 12), dx=2, dy=-3)
    assert moved.sum() == 1 and moved[0, 0, 7, 14] == 1
    assert shift(_dot(10, 26), dx=2).sum() == 0  # pushed out of the frame: gone
    assert torch.equal(shift(shift(_dot(10, 12), dx=-3), dx=3), _dot(10, 12))


def test_rotation_by_90_degrees_is_a_quarter_turn_anticlockwise(subset):
    x, _ = subset
    quarter = rotate(x[:16], 90)
    # rot90 with k=1 over (H, W) turns the picture anticlockwise as it is displayed.
    assert torch.allclose(quarter, torch.rot90(x[:16], 1, dims=(2, 3)), atol=1e-5)
    assert not torch.allclose(quarter, torch.rot90(x[:16], -1, dims=(2, 3)), atol=1e-2)
    dot = rotate(_dot(2, 13), 90)  # a dot above the centre moves to its left
    assert dot[0, 0].argmax() == 14 * 28 + 2


def test_thickness_dilates_and_erodes_with_a_plus():
    plus = thickness(_dot(14, 14), 1)
    assert plus.sum() == 5
    assert all(plus[0, 0, r, c] == 1 for r, c in [(14, 14), (13, 14), (15, 14), (14, 13),
                                                   (14, 15)])
    assert torch.equal(thickness(plus, -1), _dot(14, 14))
    assert thickness(_dot(14, 14), -1).sum() == 0  # a one-pixel stroke disappears
    assert thickness(_dot(14, 14), 2).sum() == 13  # a diamond of radius 2


def test_noise_is_fixed_clipped_and_scaled(subset):
    x, _ = subset
    a, b = gaussian_noise(x, 0.3), gaussian_noise(x, 0.3)
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert (gaussian_noise(x, 0.1) - x).abs().mean() < (a - x).abs().mean()


def test_fgsm_stays_in_the_epsilon_box(trained, subset):
    x, y = subset
    gradient = loss_gradient(trained, x, y)
    assert torch.equal(fgsm(x, gradient, 0.0), x)
    adv = fgsm(x, gradient, 0.1)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_fgsm_raises_the_loss_and_lowers_accuracy(trained, subset):
    x, y = subset
    result = sweep(trained, x, y, levels={"fgsm": (0, 0.05, 0.1, 0.2)})
    losses = [result.losses[e] for e in (0, 0.05, 0.1, 0.2)]
    assert all(a < b for a, b in zip(losses, losses[1:], strict=False)), losses
    accuracy = [a for _, a in result.accuracy["fgsm"]]
    assert accuracy[0] > 0.95 and accuracy[-1] < accuracy[0] - 0.1, accuracy


def test_sweep_plain_accuracy_is_the_models(trained, subset):
    from mnist_cnn.evaluate import predict_logits

    x, y = subset
    result = sweep(trained, x, y, levels={"rotation": (-15, 0, 15), "noise": (0, 0.3)})
    plain = (predict_logits(trained, x).argmax(1) == y).double().mean().item()
    assert result.plain_accuracy == plain
    assert dict(result.accuracy["rotation"])[0] == plain == dict(result.accuracy["noise"])[0]
    assert result.count == 300 and result.predictions[("noise", 0.3)].shape == (300,)
    rotated = predict_logits(trained, rotate(x, 15)).argmax(1).numpy()
    assert np.array_equal(result.predictions[("rotation", 15)], rotated)
    assert result.samples[("rotation", 15)].shape == (1, 28, 28)


def test_unknown_perturbation_is_refused(subset):
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb("blur", 1, subset[0])
