"""Adam, SGD and RMSprop with Keras' defaults and Keras' exact update rules.

Keras and torch name the same optimisers but differ in details: Keras adds Adam's epsilon
to sqrt(v) before bias correction (torch after), keeps SGD's momentum as a velocity that
already holds the learning rate, and divides RMSprop's step by sqrt(v + epsilon) (torch:
sqrt(v) + epsilon). Each rule below is checked against Keras' documented update in
tests/test_optimizers.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch

from mnist_cnn.errors import UsageError

NAMES = ("adam", "sgd", "rmsprop")
DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-2, "rmsprop": 1e-3}  # Keras' defaults


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimiser by name with its settings; every default is Keras'."""

    name: str = "adam"
    learning_rate: float = 1e-3
    beta_1: float = 0.9  # adam
    beta_2: float = 0.999  # adam
    epsilon: float = 1e-7  # adam, rmsprop
    momentum: float = 0.0  # sgd, rmsprop
    nesterov: bool = False  # sgd
    rho: float = 0.9  # rmsprop

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise UsageError(f"unknown optimizer {self.name!r}; choose one of: "
                             f"{', '.join(NAMES)}")
        for key in ("learning_rate", "epsilon"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise UsageError(f"{key} must be a finite number above 0, got {value!r}")
        for key in ("beta_1", "beta_2", "momentum", "rho"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise UsageError(f"{key} must be in [0, 1), got {value!r}")

    @classmethod
    def named(cls, name: str, learning_rate: float | None = None) -> OptimizerSpec:
        """`name` with Keras' defaults, the learning rate too unless given."""
        if name not in NAMES:
            raise UsageError(f"unknown optimizer {name!r}; choose one of: {', '.join(NAMES)}")
        return cls(name, DEFAULT_LR[name] if learning_rate is None else learning_rate)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The torch optimiser that takes exactly Keras' steps (see `step`)."""
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.learning_rate,
                                    betas=(self.beta_1, self.beta_2), eps=self.epsilon)
        if self.name == "sgd":
            return KerasSGD(params, self.learning_rate, self.momentum, self.nesterov)
        return KerasRMSprop(params, self.learning_rate, self.rho, self.momentum, self.epsilon)

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> None:
        """Optimiser step `t` (1-based, counted over the whole run)."""
        if self.name == "adam":
            keras_adam_step(optimizer, t, self.beta_2, self.epsilon)
        else:
            optimizer.step()


def keras_adam_step(optimizer: torch.optim.Adam, t: int, beta_2: float = 0.999,
                    epsilon: float = 1e-7) -> None:
    """Step `t` (1-based) of Adam exactly as Keras computes it.

    Keras adds epsilon to sqrt(v) *before* bias correction, torch after; the two agree when
    torch's epsilon is eps / sqrt(1 - beta2^t) (about 30x Keras' epsilon at the first step).
    """
    for group in optimizer.param_groups:
        group["eps"] = epsilon / math.sqrt(1.0 - beta_2 ** t)
    optimizer.step()


def _with_grads(group: dict) -> list[torch.nn.Parameter]:
    return [p for p in group["params"] if p.grad is not None]


class KerasSGD(torch.optim.Optimizer):
    """Keras' SGD: m = momentum * m - lr * g; w += m (Nesterov: w += momentum * m - lr * g)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 (torch's signature)
        for group in self.param_groups:
            params = _with_grads(group)
            grads = [p.grad for p in params]
            lr, momentum = group["lr"], group["momentum"]
            if momentum == 0:
                torch._foreach_add_(params, grads, alpha=-lr)
                continue
            velocity = [self.state[p].setdefault("momentum", torch.zeros_like(p))
                        for p in params]
            torch._foreach_mul_(velocity, momentum)
            torch._foreach_add_(velocity, grads, alpha=-lr)
            if group["nesterov"]:
                step = torch._foreach_mul(velocity, momentum)
                torch._foreach_add_(step, grads, alpha=-lr)
                torch._foreach_add_(params, step)
            else:
                torch._foreach_add_(params, velocity)


class KerasRMSprop(torch.optim.Optimizer):
    """Keras' RMSprop: v = rho * v + (1 - rho) * g^2; step = lr * g / sqrt(v + epsilon);
    with momentum, m = momentum * m + step; w -= m (else w -= step)."""

    def __init__(self, params, lr: float, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7):
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum,
                                  "epsilon": epsilon})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 (torch's signature)
        for group in self.param_groups:
            params = _with_grads(group)
            grads = [p.grad for p in params]
            rho, momentum = group["rho"], group["momentum"]
            velocity = [self.state[p].setdefault("velocity", torch.zeros_like(p))
                        for p in params]
            torch._foreach_mul_(velocity, rho)
            torch._foreach_addcmul_(velocity, grads, grads, value=1 - rho)
            denominator = torch._foreach_add(velocity, group["epsilon"])
            torch._foreach_sqrt_(denominator)
            step = torch._foreach_div(grads, denominator)
            torch._foreach_mul_(step, group["lr"])
            if momentum > 0:
                moments = [self.state[p].setdefault("momentum", torch.zeros_like(p))
                           for p in params]
                torch._foreach_mul_(moments, momentum)
                torch._foreach_add_(moments, step)
                step = moments
            torch._foreach_sub_(params, step)
