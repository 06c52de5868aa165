"""Models whose answer is a mean of probabilities: an ensemble of networks (here) and
test-time augmentation (tta.py).

Every model in the product maps (B, 1, 28, 28) images to (B, classes) logits. An averaging
model computes probabilities first, so its `forward` returns their log: softmax(log p) = p,
since p already sums to 1, and cross-entropy on log p is the loss of the average. Code that
wants the probabilities themselves calls `probabilities(model, x)`, which takes the mean
directly instead of going through log and softmax.

An averaging model shows itself as one network, `shown`: its architecture, its layers and
their outputs are what summaries, the page and the report's feature maps display; only the
last output (the answer) is the whole model's.
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_cnn.errors import ArchitectureError
from mnist_cnn.model import Architecture, Net

# The smallest positive normal float32: log(0) would be -inf, which a loss turns into nan.
_TINY = torch.finfo(torch.float32).tiny


class Averaging(nn.Module):
    """A model answering with a mean of probabilities; subclasses define `probabilities`
    and `shown`."""

    # How many images each input image becomes inside one forward pass (test-time
    # augmentation runs its views as one batch), so callers can size their batches.
    copies_per_image = 1

    @property
    def shown(self) -> Net:  # pragma: no cover - abstract
        raise NotImplementedError

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def arch(self) -> Architecture:
        return self.shown.arch

    @property
    def layers(self) -> nn.ModuleDict:
        return self.shown.layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.probabilities(x).clamp_min(_TINY))

    def forward_all(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """The shown network's layer outputs on `x`, the last replaced by the whole model's
        logits (its answer)."""
        outputs = self.shown.forward_all(x)
        name, _ = outputs[-1]
        return [*outputs[:-1], (name, self(x))]


def copies_per_image(model: nn.Module) -> int:
    """How many images one input image becomes in `model`'s forward pass (1 for a network)."""
    return model.copies_per_image if isinstance(model, Averaging) else 1


def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, classes) float32 probabilities of `model` on `x`: an averaging model's mean
    itself, any other model's softmax of its logits."""
    if isinstance(model, Averaging):
        return model.probabilities(x)
    return torch.softmax(model(x).float(), dim=1)


def shown_network(model: nn.Module) -> Net:
    """The one network a model shows (itself, for a network)."""
    return model.shown if isinstance(model, Averaging) else model


class Ensemble(Averaging):
    """Several networks as one: the mean of their probabilities. It shows its first member."""

    def __init__(self, members: list[Net]):
        super().__init__()
        if not members:
            raise ArchitectureError("an ensemble needs at least one network")
        self.members = nn.ModuleList(members)

    @property
    def shown(self) -> Net:
        return self.members[0]

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        # (members, B, classes) -> (B, classes); float32 whatever autocast ran the layers in
        return torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members]).mean(0)


Model = Net | Ensemble  # what a run directory loads as: one network, or several averaged
