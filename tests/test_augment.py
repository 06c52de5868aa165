"""On-device augmentation: exact geometry on known transforms, reproducible randomness, range."""

from __future__ import annotations

import math

import pytest
import torch

from mnist_cnn.augment import Augment, affine_matrices, random_distort, warp

STRONG = Augment(rotate=30, scale=0.3, shift=0.2, shear=30, elastic=3.0)


def _batch(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _forward(a: float = 1.0, b: float = 0.0, c: float = 0.0, d: float = 1.0,
             dx_px: float = 0.0, dy_px: float = 0.0, n: int = 1) -> torch.Tensor:
    """A (n, 2, 3) content transform; shifts given in pixels of a 28x28 image."""
    m = torch.tensor([[a, b, dx_px * 2 / 28], [c, d, dy_px * 2 / 28]])
    return m.expand(n, 2, 3)


def test_identity_gives_the_input_back():
    x = _batch().double()  # in float64 the sampling points land exactly on pixel centres
    assert torch.allclose(warp(x, _forward(n=len(x))), x, atol=1e-12, rtol=0)
    zero_field = torch.zeros(len(x), 28, 28, 2)
    assert torch.allclose(warp(x, _forward(n=len(x)), zero_field), x, atol=1e-12, rtol=0)
    # float32: a coordinate near the far edge (|g| ~ 1, spacing 1.2e-7) is 14 pixels from the
    # centre, so grid_sample's unnormalising can be 1.7e-6 of a pixel off there.
    x = x.float()
    assert torch.allclose(warp(x, _forward(n=len(x))), x, atol=4e-6, rtol=0)


def test_no_ranges_leave_the_batch_untouched_and_draw_nothing():
    x, g = _batch(), torch.Generator().manual_seed(3)
    before = g.get_state()
    assert random_distort(x, Augment(), g) is x
    assert torch.equal(g.get_state(), before)


@pytest.mark.parametrize(("dx", "dy"), [(3, 2), (-5, 0), (0, -4)])
def test_a_shift_moves_a_pixel_where_expected(dx, dy):
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 12] = 1.0  # row 10, column 12
    out = warp(x, _forward(dx_px=dx, dy_px=dy))
    assert out[0, 0, 10 + dy, 12 + dx].item() == pytest.approx(1.0, abs=1e-5)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_a_quarter_turn_equals_rot90():
    x = _batch(2)
    turned = warp(x, _forward(a=0.0, b=-1.0, c=1.0, d=0.0, n=2))  # (x, y) -> (-y, x)
    assert torch.allclose(turned, torch.rot90(x, k=-1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_matrices_stay_inside_their_ranges():
    aug = Augment(rotate=10, scale=0.1, shift=0.1)
    m = affine_matrices(aug, 4096, torch.Generator().manual_seed(0))
    zoom = torch.linalg.det(m[:, :, :2]).sqrt()
    angle = torch.atan2(m[:, 1, 0], m[:, 0, 0])
    assert zoom.min() >= 0.9 - 1e-6 and zoom.max() <= 1.1 + 1e-6
    assert angle.abs().max() <= math.radians(10) + 1e-6
    assert m[:, :, 2].abs().max() <= 0.2 + 1e-6
    assert zoom.std() > 0.05 and angle.std() > 0.05  # and actually spread across them


def test_the_same_generator_state_gives_the_same_batch():
    x, g = _batch(), torch.Generator().manual_seed(7)
    state = g.get_state()
    first = random_distort(x, STRONG, g)
    second = random_distort(x, STRONG, g)
    g.set_state(state)  # as a resumed run does with the state saved in its checkpoint
    assert torch.equal(random_distort(x, STRONG, g), first)
    assert not torch.equal(first, second)
    assert not torch.equal(first[0], first[1])  # each image draws its own distortion


def test_output_stays_in_the_unit_range_and_keeps_shape_and_dtype():
    x = (_batch(64) > 0.5).float()  # hard 0/1 edges overshoot most under interpolation
    out = random_distort(x, STRONG, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, x)


def test_channels_last_input_is_accepted():
    x = _batch().contiguous(memory_format=torch.channels_last)
    out = random_distort(x, STRONG, torch.Generator().manual_seed(0))
    ref = random_distort(x.contiguous(), STRONG, torch.Generator().manual_seed(0))
    assert torch.allclose(out, ref, atol=1e-6)
