"""Why did the network answer that: per-pixel attributions for one class's logit.

Two methods, both written out in plain torch (a few lines each; Captum would add a
dependency for no gain here):

- integrated gradients: the gradient of the class's logit averaged along the straight path
  from a baseline image to the input, times (input - baseline). The baseline is the
  all-zero image, black = no ink. Its attributions add up to logit(x) - logit(baseline)
  (completeness), up to the error of the trapezoid rule over `steps` intervals.
- gradient x input: the gradient at the input itself, times the input; one backward pass.

Positive attributions push towards the class, negative ones against it. With a black
baseline only pixels with ink can carry attribution: a missing stroke cannot show.
Any model that maps (B, 1, 28, 28) floats to (B, classes) logits works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IG_STEPS = 64  # trapezoid intervals; completeness holds within 1% on the lesson's networks
CHUNK = 512  # images per forward/backward pass: bounds memory for large batches


@dataclass(frozen=True)
class Attribution:
    """Per-pixel attributions for one target class of each image."""

    values: torch.Tensor  # (B, 1, 28, 28), same shape as the input
    target: torch.Tensor  # (B,) the class explained
    logit: torch.Tensor  # (B,) the target's logit at the input
    baseline_logit: torch.Tensor  # (B,) the target's logit at the baseline (IG only)

    def completeness_error(self) -> torch.Tensor:
        """|sum of attributions - (logit - baseline logit)| relative to that difference, (B,)."""
        delta = self.logit - self.baseline_logit
        total = self.values.flatten(1).sum(1)
        return (total - delta).abs() / delta.abs().clamp_min(1e-12)


def _target_gradients(model: torch.nn.Module, x: torch.Tensor,
                      target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d logit_target / d x, logit_target) for every image of `x`, in chunks."""
    grads, logits = [], []
    for i in range(0, len(x), CHUNK):
        part = x[i:i + CHUNK].detach().requires_grad_(True)
        with torch.enable_grad():
            chosen = model(part).gather(1, target[i:i + CHUNK, None])[:, 0]  # (b,)
            # Images are independent in eval mode, so the gradient of the sum is each
            # image's own gradient.
            (grad,) = torch.autograd.grad(chosen.sum(), part)
        grads.append(grad)
        logits.append(chosen.detach())
    return torch.cat(grads), torch.cat(logits)


def _targets(model: torch.nn.Module, x: torch.Tensor,
             target: torch.Tensor | None) -> torch.Tensor:
    """The given targets, or the model's own answers (the predicted class)."""
    if target is not None:
        return torch.as_tensor(target, dtype=torch.int64).reshape(len(x))
    with torch.no_grad():  # not inference_mode: the targets index a graph later
        return torch.cat([model(x[i:i + CHUNK]).argmax(1) for i in range(0, len(x), CHUNK)])


def gradient_x_input(model: torch.nn.Module, x: torch.Tensor,
                     target: torch.Tensor | None = None) -> Attribution:
    """x * d logit_target / d x for (B, 1, 28, 28) images; target defaults to the prediction."""
    model.eval()
    target = _targets(model, x, target)
    grad, logit = _target_gradients(model, x, target)
    return Attribution(values=grad * x, target=target, logit=logit,
                       baseline_logit=torch.zeros_like(logit))


def integrated_gradients(model: torch.nn.Module, x: torch.Tensor,
                         target: torch.Tensor | None = None,
                         steps: int = IG_STEPS) -> Attribution:
    """Integrated gradients from the black (all-zero) image to `x` (B, 1, 28, 28), trapezoid
    rule over `steps` equal intervals; target defaults to the predicted class."""
    if steps < 1:
        raise ValueError("integrated gradients needs at least one step")
    model.eval()
    target = _targets(model, x, target)
    baseline = torch.zeros_like(x)
    alphas = torch.linspace(0.0, 1.0, steps + 1, dtype=x.dtype)  # (S+1,)
    weights = torch.full((steps + 1,), 1.0 / steps, dtype=x.dtype)
    weights[[0, -1]] /= 2  # trapezoid: the two ends count half
    # Every image at every alpha as one batch: (S+1) * B images, image-major.
    path = baseline[:, None] + alphas[None, :, None, None, None] * (x - baseline)[:, None]
    grads, logits = _target_gradients(model, path.reshape(-1, *x.shape[1:]),
                                      target.repeat_interleave(steps + 1))
    grads = grads.reshape(len(x), steps + 1, *x.shape[1:])
    logits = logits.reshape(len(x), steps + 1)
    mean_grad = (weights[None, :, None, None, None] * grads).sum(1)
    return Attribution(values=mean_grad * (x - baseline), target=target,
                       logit=logits[:, -1], baseline_logit=logits[:, 0])
