"""How far the answers hold when the digit changes a little: accuracy under perturbations.

Each perturbation is a batched torch function on (B, 1, 28, 28) images in [0, 1]; a level of
0 returns the images unchanged (exactly, not resampled). `sweep()` runs every family's
levels over one subset of the test set:

- rotation: degrees, positive = anticlockwise, bilinear, about the image centre;
- shift_x / shift_y: whole pixels, positive = right / down, the border filled with black;
- thickness: steps of dilation (positive: thicker strokes) or erosion (negative: thinner)
  with a plus-shaped 3x3 element (grey-level max / min over a pixel and its 4 neighbours);
- noise: Gaussian noise of this standard deviation (one fixed draw, scaled), clipped to [0, 1];
- fgsm: the fast gradient sign method, x + epsilon * sign(d loss / d x) clipped to [0, 1],
  with the true labels: the worst small change to every pixel at once, to first order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# The levels shown, by family: each includes 0 (the plain images).
# Few levels, because each costs a pass over the subset: where accuracy changes, not where
# it stays flat (a 1-pixel shift or noise of 0.1 cost nothing measurable). A second erosion
# step wipes out most MNIST strokes (2-3 pixels wide), so thinning stops at one.
LEVELS: dict[str, tuple[float, ...]] = {
    "rotation": (-20, -10, 0, 10, 20),  # degrees
    "shift_x": (-3, -2, 0, 2, 3),  # pixels
    "shift_y": (-3, -2, 0, 2, 3),  # pixels
    "thickness": (-1, 0, 1, 2),  # erosion (-) / dilation (+) steps
    "noise": (0, 0.2, 0.3, 0.4),  # standard deviation, in units of full ink
    "fgsm": (0, 0.05, 0.1, 0.2, 0.3),  # epsilon, max change of a pixel
}
UNITS = {"rotation": "degrees", "shift_x": "pixels", "shift_y": "pixels", "thickness": "steps",
         "noise": "sigma", "fgsm": "epsilon"}
NOISE_SEED = 0  # one fixed noise draw: the same images every run, levels comparable


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate (B, 1, H, W) images anticlockwise by `degrees` about their centre (bilinear,
    black outside)."""
    if degrees == 0:
        return x.clone()
    t = math.radians(degrees)
    theta = torch.tensor([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0]],
                         dtype=x.dtype).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shift(x: torch.Tensor, dx: int = 0, dy: int = 0) -> torch.Tensor:
    """Move (B, C, H, W) images `dx` pixels right and `dy` down; what leaves is lost, what
    enters is black."""
    h, w = x.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return torch.zeros_like(x)
    # Pad on the side the image moves away from, then crop back to H x W.
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top:top + h, left:left + w].clone()


def _dilate_plus(x: torch.Tensor) -> torch.Tensor:
    """Grey-level dilation with a plus-shaped element: max of a pixel and its 4 neighbours."""
    vertical = F.max_pool2d(x, (3, 1), stride=1, padding=(1, 0))
    horizontal = F.max_pool2d(x, (1, 3), stride=1, padding=(0, 1))
    return torch.maximum(vertical, horizontal)


def thickness(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Thicker strokes (`steps` dilations) when positive, thinner (erosions) when negative."""
    out = x.clone()
    for _ in range(abs(int(steps))):
        # Erosion is dilation of the negative: min over the element.
        out = _dilate_plus(out) if steps > 0 else -_dilate_plus(-out)
    return out


def gaussian_noise(x: torch.Tensor, sigma: float, seed: int = NOISE_SEED) -> torch.Tensor:
    """x + sigma * z, clipped to [0, 1]; z is one fixed standard-normal draw per `seed`."""
    if sigma == 0:
        return x.clone()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    return (x + sigma * z).clamp(0.0, 1.0)


def loss_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                  chunk: int = 512) -> torch.Tensor:
    """d cross-entropy(model(x), y) / d x for every image (each image's own loss)."""
    model.eval()
    grads = []
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].detach().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model(part), y[i:i + chunk], reduction="sum")
            (grad,) = torch.autograd.grad(loss, part)
        grads.append(grad)
    return torch.cat(grads)


def fgsm(x: torch.Tensor, gradient: torch.Tensor, epsilon: float) -> torch.Tensor:
    """The fast gradient sign step: x + epsilon * sign(gradient), clipped to [0, 1]."""
    if epsilon == 0:
        return x.clone()
    return (x + epsilon * gradient.sign()).clamp(0.0, 1.0)


def perturb(family: str, level: float, x: torch.Tensor,
            gradient: torch.Tensor | None = None) -> torch.Tensor:
    """Apply one family at one level; "fgsm" needs the loss gradient of `x`."""
    apply: dict[str, Callable[[], torch.Tensor]] = {
        "rotation": lambda: rotate(x, level),
        "shift_x": lambda: shift(x, dx=int(level)),
        "shift_y": lambda: shift(x, dy=int(level)),
        "thickness": lambda: thickness(x, int(level)),
        "noise": lambda: gaussian_noise(x, level),
        "fgsm": lambda: fgsm(x, _needs(gradient), level),
    }
    if family not in apply:
        raise ValueError(f"unknown perturbation {family!r}; one of {', '.join(apply)}")
    return apply[family]()


def _needs(gradient: torch.Tensor | None) -> torch.Tensor:
    if gradient is None:
        raise ValueError("fgsm needs the loss gradient of the images")
    return gradient


@dataclass(frozen=True)
class Sweep:
    """Accuracy of every family at every level, on the same `count` test images."""

    count: int  # images in the subset (the first `count` of the test set)
    plain_accuracy: float  # unperturbed, on the same subset
    accuracy: dict[str, list[tuple[float, float]]]  # family -> [(level, accuracy), ...]
    predictions: dict[tuple[str, float], np.ndarray]  # (family, level) -> (count,) answers
    losses: dict[float, float]  # fgsm epsilon -> mean cross-entropy on the subset
    samples: dict[tuple[str, float], np.ndarray]  # (family, level) -> (keep, H, W) images

    def to_dict(self) -> dict[str, object]:
        return {"images": self.count, "plain_accuracy": self.plain_accuracy,
                "accuracy": {f: [{"level": lv, "accuracy": a} for lv, a in rows]
                             for f, rows in self.accuracy.items()},
                "fgsm_loss": [{"epsilon": e, "loss": v} for e, v in self.losses.items()]}


def sweep(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
          levels: dict[str, tuple[float, ...]] | None = None, keep: int = 1) -> Sweep:
    """Accuracy of `model` on (N, 1, 28, 28) images `x` with labels `y` under every level of
    every family; level 0 is computed once and shared. The first `keep` perturbed images of
    every level are kept, to be shown."""
    from mnist_cnn.evaluate import predict_logits

    levels = LEVELS if levels is None else levels
    logits = predict_logits(model, x)
    plain = logits.argmax(1)
    gradient = loss_gradient(model, x, y) if "fgsm" in levels else None
    accuracy: dict[str, list[tuple[float, float]]] = {}
    predictions: dict[tuple[str, float], np.ndarray] = {}
    losses: dict[float, float] = {}
    samples: dict[tuple[str, float], np.ndarray] = {}
    for family, family_levels in levels.items():
        accuracy[family] = []
        for level in family_levels:
            changed = x if level == 0 else perturb(family, level, x, gradient)
            out = logits if level == 0 else predict_logits(model, changed)
            samples[(family, level)] = changed[:keep, 0].numpy().copy()
            answers = out.argmax(1)
            predictions[(family, level)] = answers.numpy()
            accuracy[family].append((level, (answers == y).double().mean().item()))
            if family == "fgsm":
                losses[level] = F.cross_entropy(out, y).item()
    return Sweep(count=len(x), plain_accuracy=(plain == y).double().mean().item(),
                 accuracy=accuracy, predictions=predictions, losses=losses, samples=samples)
