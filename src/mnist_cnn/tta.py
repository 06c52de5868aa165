"""Test-time augmentation: the mean of a model's probabilities over an image and a few
fixed, small distortions of it (`mnist-cnn evaluate --tta N`, `mnist-cnn predict --tta N`).

`--tta N` takes the first N views of this list, always in this order, the same every run:

    1  the image itself
    2  shifted one pixel right        3  shifted one pixel left
    4  shifted one pixel down         5  shifted one pixel up
    6  rotated 10 degrees anticlockwise
    7  rotated 10 degrees clockwise
    8  shrunk to 90% about its centre 9  grown to 110% about its centre

Shifts move whole pixels (the edge that comes in is black), so they are exact. Rotations
and scalings resample bilinearly about the image's centre, with black outside. All are
changes MNIST's own writers make: a digit a pixel off centre, slanted a little, a little
smaller or larger than its 20-pixel box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_cnn.averaging import Averaging, copies_per_image, probabilities, shown_network
from mnist_cnn.errors import UsageError
from mnist_cnn.model import Net


@dataclass(frozen=True)
class View:
    """One distortion: a shift in whole pixels, then a rotation and a scaling."""

    name: str
    dx: int = 0  # pixels to the right (negative: left)
    dy: int = 0  # pixels down (negative: up)
    degrees: float = 0.0  # anticlockwise, as the image is seen
    scale: float = 1.0  # the digit's size, relative


VIEWS = (View("original"), View("right 1 px", dx=1), View("left 1 px", dx=-1),
         View("down 1 px", dy=1), View("up 1 px", dy=-1),
         View("rotated 10° anticlockwise", degrees=10), View("rotated 10° clockwise", degrees=-10),
         View("scaled 90%", scale=0.9), View("scaled 110%", scale=1.1))
MAX_TTA = len(VIEWS)


def shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """(B, C, H, W) moved `dx` pixels right and `dy` down; what comes in is 0 (black)."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def rotate_scale(x: torch.Tensor, degrees: float, scale: float = 1.0) -> torch.Tensor:
    """(B, C, H, W) rotated `degrees` anticlockwise and scaled by `scale` about the centre,
    resampled bilinearly; outside the image is 0 (black)."""
    # affine_grid maps each output position to the input position it reads, in coordinates
    # from -1 to 1 with y pointing down: reading at R(angle) p / scale turns the picture by
    # -angle on screen, so an anticlockwise turn reads at the clockwise-rotated position.
    a = math.radians(degrees)
    cos, sin = math.cos(a) / scale, math.sin(a) / scale
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], device=x.device)
    theta = theta.expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def distort(x: torch.Tensor, view: View) -> torch.Tensor:
    """`x` (B, C, H, W) as `view` sees it."""
    if view.dx or view.dy:
        x = shift(x, view.dx, view.dy)
    if view.degrees or view.scale != 1.0:
        x = rotate_scale(x, view.degrees, view.scale)
    return x


class TestTimeAugmentation(Averaging):
    """`model` averaged over the first `n` VIEWS of each image."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        self.model = model
        self.views = VIEWS[:n]

    @property
    def shown(self) -> Net:
        return shown_network(self.model)

    @property
    def copies_per_image(self) -> int:  # type: ignore[override]
        return len(self.views) * copies_per_image(self.model)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        # One batch of every view: (views * B, ...) -> (views, B, classes) -> (B, classes)
        batch = torch.cat([distort(x, v) for v in self.views])
        p = probabilities(self.model, batch)
        return p.reshape(len(self.views), len(x), -1).mean(0)


def check_tta(n: int) -> int:
    """`n` if it is a number of views there are, else a UsageError."""
    if not 1 <= n <= MAX_TTA:
        raise UsageError(f"--tta must be between 1 (the image alone) and {MAX_TTA}, not {n}")
    return n


def with_tta(model: nn.Module, n: int) -> nn.Module:
    """`model` averaged over `n` views (`model` itself for n = 1)."""
    return model if check_tta(n) == 1 else TestTimeAugmentation(model, n)
