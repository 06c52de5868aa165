"""Random affine (and optionally elastic) distortion of training batches, on their own device.

Each image gets its own rotation, scale, shear and shift, drawn from an explicit
`torch.Generator` (so a run is reproducible, and resumable from the generator's saved state).
The whole batch is resampled with one `affine_grid` + one `grid_sample`: the elastic field,
when asked for, is added to the same sampling grid rather than applied as a second pass.

Random numbers are always drawn on the CPU generator and then moved to the batch's device, so
the same seed gives the same distortions on every device (only the resampling runs there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Ranges of the random distortion; each is drawn uniformly in [-range, +range]."""

    rotate: float = 0.0  # degrees
    scale: float = 0.0  # relative: 0.1 draws a zoom factor in [0.9, 1.1]
    shift: float = 0.0  # fraction of the image's side: 0.1 is up to 2.8 pixels on MNIST
    shear: float = 0.0  # degrees, horizontal shear (slant, as handwriting varies)
    elastic: float = 0.0  # largest displacement of the smooth elastic field, in pixels
    elastic_grid: int = 4  # the field's control points per side: fewer is smoother
    until: float = 1.0  # the share of the run's steps that distort; the steps after it are clean

    @property
    def active(self) -> bool:
        return any(v != 0.0 for v in (self.rotate, self.scale, self.shift, self.shear,
                                      self.elastic))


def _uniform(n: int, half_range: float, generator: torch.Generator) -> torch.Tensor:
    """n draws from U(-half_range, half_range) in float32 on the CPU."""
    return (torch.rand(n, generator=generator) * 2.0 - 1.0) * half_range


def affine_matrices(aug: Augment, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) forward transforms of the image content, in affine_grid's [-1, 1] coordinates.

    The content is scaled, sheared, rotated about the centre, then shifted: a point p of the
    input lands at A p + t in the output.
    """
    angle = _uniform(n, math.radians(aug.rotate), generator)
    zoom = 1.0 + _uniform(n, aug.scale, generator)
    shear = torch.tan(_uniform(n, math.radians(aug.shear), generator))
    shift = _uniform(2 * n, 2.0 * aug.shift, generator).view(n, 2)  # [-1, 1] spans 2 units
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    # rotation*zoom @ [[1, shear], [0, 1]]
    linear = torch.stack([torch.stack([cos, cos * shear - sin], -1),
                          torch.stack([sin, sin * shear + cos], -1)], -2)  # (n, 2, 2)
    return torch.cat([linear, shift.unsqueeze(-1)], -1)


def _sampling_theta(forward: torch.Tensor) -> torch.Tensor:
    """affine_grid maps output points to input points: the inverse of the content's motion."""
    inv = torch.linalg.inv(forward[:, :, :2])
    return torch.cat([inv, -(inv @ forward[:, :, 2:])], -1)


def _elastic_field(aug: Augment, n: int, size: tuple[int, int],
                   generator: torch.Generator) -> torch.Tensor:
    """(n, H, W, 2) smooth random displacement in [-1, 1] units: coarse noise, upsampled."""
    k = aug.elastic_grid
    coarse = torch.rand(n, 2, k, k, generator=generator) * 2.0 - 1.0
    field = F.interpolate(coarse, size=size, mode="bicubic", align_corners=True)
    pixels_to_units = torch.tensor([2.0 / size[1], 2.0 / size[0]]).view(1, 2, 1, 1)
    return (field * aug.elastic * pixels_to_units).permute(0, 2, 3, 1)


def warp(x: torch.Tensor, forward: torch.Tensor,
         field: torch.Tensor | None = None) -> torch.Tensor:
    """Move each image's content by its (B, 2, 3) `forward` transform (affine_matrices'
    convention), plus an optional (B, H, W, 2) displacement of the sampling points.

    `x` is (B, C, H, W) floats in [0, 1]; the result has its shape, dtype and device and
    stays in [0, 1]. Outside the image counts as background (0), as MNIST's border is.
    """
    n, c, h, w = x.shape
    theta = _sampling_theta(forward.to(torch.float32))
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, c, h, w], align_corners=False)
    if field is not None:
        grid = grid + field.to(x.device, x.dtype)
    # Bilinear weights are convex, so values leave [0, 1] by rounding at most.
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp_(0.0, 1.0)


def random_distort(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Distort each image of `x` (B, C, H, W floats in [0, 1]) with its own random draw from
    `aug`'s ranges; `generator` is a CPU generator, advanced by a fixed amount per image."""
    if not aug.active:
        return x
    n, _, h, w = x.shape
    forward = affine_matrices(aug, n, generator)
    field = _elastic_field(aug, n, (h, w), generator) if aug.elastic > 0.0 else None
    return warp(x, forward, field)


def augment_generator(aug: Augment | None, seed: int) -> torch.Generator | None:
    """The augmentation's own random stream for a run with `seed`, or None when `aug` asks for
    nothing. Seeded from a SeedSequence child of the seed, so it is independent of the streams
    the run's other generators draw from with the seed itself."""
    if aug is None or not aug.active:
        return None
    child = np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(child))
