"""The torch modules that compute the lesson's layers with Keras' semantics (layers.py
holds the specs that build them): asymmetric 'same' padding, pooling that averages real
cells only, channels-last flattening, and Keras' BatchNormalization."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # F.pad's (left, right, top, bottom)


class Conv2d(nn.Conv2d):
    """nn.Conv2d with Keras' asymmetric 'same' padding when it is needed."""

    def __init__(self, cin: int, cout: int, kernel: Pair, strides: Pair,
                 pads: Pads, bias: bool):
        left, right, top, bottom = pads
        symmetric = left == right and top == bottom
        super().__init__(cin, cout, kernel, stride=strides, bias=bias,
                         padding=(top, left) if symmetric else 0)
        self.pad = None if symmetric else pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return super().forward(x)


class Pool2d(nn.Module):
    """Max or average pooling with Keras' 'same' padding (-inf for max; real cells only for
    the average)."""

    def __init__(self, kind: str, pool: Pair, strides: Pair, pads: Pads):
        super().__init__()
        self.kind, self.pool, self.strides = kind, pool, strides
        self.pad = pads if any(pads) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            if self.pad is not None:
                x = F.pad(x, self.pad, value=-math.inf)
            return F.max_pool2d(x, self.pool, self.strides)
        if self.pad is None:
            return F.avg_pool2d(x, self.pool, self.strides)
        total = F.avg_pool2d(F.pad(x, self.pad), self.pool, self.strides)
        real = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), self.pad), self.pool, self.strides)
        return total / real  # the mean over the window's real cells


class ChannelsLastFlatten(nn.Module):
    """Flatten in Keras' (H, W, C) order, so Dense weights mean the same as in Keras."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
        return x.flatten(1)


class BatchNorm(nn.Module):
    """Keras' BatchNormalization over the channel axis: batch statistics while training
    (the moving averages updated with the biased variance, as Keras does), the moving
    statistics at inference."""

    def __init__(self, channels: int, momentum: float, epsilon: float):
        super().__init__()
        self.momentum, self.epsilon = momentum, epsilon
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma,
                                self.beta, training=False, eps=self.epsilon)
        with torch.no_grad():
            dims = [0, 2, 3] if x.dim() == 4 else [0]
            var, mean = torch.var_mean(x.float(), dim=dims, correction=0)
            self.moving_mean.mul_(self.momentum).add_(mean, alpha=1 - self.momentum)
            self.moving_variance.mul_(self.momentum).add_(var, alpha=1 - self.momentum)
        return F.batch_norm(x, None, None, self.gamma, self.beta, training=True,
                            eps=self.epsilon)


def glorot_uniform(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Keras' default kernel initialiser: U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-limit, limit)
