"""Adam, SGD and RMSprop with Keras' defaults and Keras' exact update rules.

Keras and torch name the same optimisers but differ in details: Keras adds Adam's epsilon
to sqrt(v) before bias correction (torch after), keeps SGD's momentum as a velocity that
already holds the learning rate, and divides RMSprop's step by sqrt(v + epsilon) (torch:
sqrt(v) + epsilon). Each rule below is checked against Keras' documented update in
tests/test_optimizers.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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

    def build(self, params: Iterable[torch.nn.Parameter]) -> KerasOptimizer:
        """The optimiser that takes exactly Keras' steps (see `step`)."""
        if self.name == "adam":
            return KerasAdam(params, self.learning_rate, self.beta_1, self.beta_2, self.epsilon)
        if self.name == "sgd":
            return KerasSGD(params, self.learning_rate, self.momentum, self.nesterov)
        return KerasRMSprop(params, self.learning_rate, self.rho, self.momentum, self.epsilon)

    def step(self, optimizer: KerasOptimizer, t: int) -> None:
        """Optimiser step `t` (1-based, counted over the whole run)."""
        optimizer.step(t)


class KerasOptimizer:
    """What the loop and a checkpoint need of an optimiser, without torch.optim.

    torch.optim imports torch._dynamo the first time an optimiser is built (1.3 s of CPU on
    this project's 2-core machine, a tenth of a whole `train --recipe fast`), and Keras'
    rules are a few foreach operations each. `state_dict()` keeps torch.optim's layout
    (per-parameter state by index, one parameter group), so checkpoints written with torch's
    own Adam by earlier versions load here. Subclasses name their per-parameter tensors
    (`STATE`) and write `update`.
    """

    STATE: tuple[str, ...] = ()

    def __init__(self, params: Iterable[torch.nn.Parameter], **hyper: float | bool):
        self.params = list(params)
        self.param_groups = [{**hyper, "params": self.params}]  # one group; a schedule sets lr
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: ARG002 (torch's signature)
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, t: int) -> None:
        """Step `t` (1-based) for the parameters that have a gradient."""
        params = [p for p in self.params if p.grad is not None]
        if params:
            slots = [[self._slot(p, key) for p in params] for key in self.STATE]
            self.update(params, [p.grad for p in params], slots, t, self.param_groups[0])

    def update(self, params: list[torch.Tensor], grads: list[torch.Tensor],
               slots: list[list[torch.Tensor]], t: int, group: dict) -> None:
        raise NotImplementedError

    def _slot(self, p: torch.Tensor, key: str) -> torch.Tensor:
        mine = self.state.setdefault(p, {})
        if key not in mine:  # zeros at the first step only
            mine[key] = torch.zeros_like(p)
        return mine[key]

    def state_dict(self) -> dict[str, object]:
        index = {p: i for i, p in enumerate(self.params)}
        group = {k: float(v) if isinstance(v, float) else v  # numpy floats do not unpickle
                 for k, v in self.param_groups[0].items() if k != "params"}  # weights-only
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, saved: dict) -> None:
        """Restore per-parameter state and the learning rate; the other settings are the
        run's own (an earlier version kept Adam's adjusted epsilon in its group)."""
        groups = saved["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"the saved optimiser holds {sum(len(g['params']) for g in groups)}"
                             f" parameters, the model {len(self.params)}")
        state = {}
        for i, p in enumerate(self.params):
            mine = saved["state"].get(i, {})
            for key in self.STATE:
                if key in mine:
                    value = mine[key]
                    if not isinstance(value, torch.Tensor) or value.shape != p.shape:
                        raise ValueError(f"the saved {key} of parameter {i} does not fit it")
                    state.setdefault(p, {})[key] = value.to(p.device, p.dtype, copy=True)
        self.state = state
        self.param_groups[0]["lr"] = float(groups[0]["lr"])


class KerasAdam(KerasOptimizer):
    """Keras' Adam: m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
    w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).

    Keras adds epsilon to sqrt(v) *before* the bias correction; torch's Adam adds it after."""

    STATE = ("exp_avg", "exp_avg_sq")  # torch's names, so its checkpoints load

    def __init__(self, params, lr: float, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7):
        super().__init__(params, lr=lr, betas=(beta_1, beta_2), eps=epsilon)

    def update(self, params, grads, slots, t, group):
        (beta_1, beta_2), m, v = group["betas"], *slots
        alpha = group["lr"] * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        torch._foreach_lerp_(m, grads, 1 - beta_1)
        torch._foreach_lerp_(v, torch._foreach_mul(grads, grads), 1 - beta_2)
        denominator = torch._foreach_sqrt(v)
        torch._foreach_add_(denominator, group["eps"])
        torch._foreach_addcdiv_(params, m, denominator, value=-alpha)


class LambdaSchedule:
    """The learning rate of optimiser step k + 1 is the initial rate x `schedule(k)`, as
    torch's LambdaLR sets it, with LambdaLR's state_dict layout (earlier checkpoints)."""

    def __init__(self, optimizer: KerasOptimizer, schedule: Callable[[int], float]):
        self.optimizer, self.schedule = optimizer, schedule
        group = optimizer.param_groups[0]
        self.base_lr = group.setdefault("initial_lr", group["lr"])
        self.last_epoch = 0  # steps taken (LambdaLR's name)
        self._apply()

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def _apply(self) -> None:
        self.optimizer.param_groups[0]["lr"] = self.base_lr * self.schedule(self.last_epoch)

    def state_dict(self) -> dict[str, object]:
        return {"base_lrs": [self.base_lr], "last_epoch": self.last_epoch,
                "_step_count": self.last_epoch + 1,
                "_last_lr": [self.optimizer.param_groups[0]["lr"]], "lr_lambdas": [None]}

    def load_state_dict(self, saved: dict) -> None:
        (base,), last = saved["base_lrs"], saved["last_epoch"]
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise ValueError(f"the saved schedule's step {last!r} is not a count")
        self.base_lr, self.last_epoch = float(base), last
        self.optimizer.param_groups[0]["initial_lr"] = self.base_lr
        self._apply()


class KerasSGD(KerasOptimizer):
    """Keras' SGD: m = momentum * m - lr * g; w += m (Nesterov: w += momentum * m - lr * g)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov)
        self.STATE = ("momentum",) if momentum else ()

    def update(self, params, grads, slots, t, group):
        lr, momentum = group["lr"], group["momentum"]
        if momentum == 0:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        (velocity,) = slots
        torch._foreach_mul_(velocity, momentum)
        torch._foreach_add_(velocity, grads, alpha=-lr)
        if group["nesterov"]:
            step = torch._foreach_mul(velocity, momentum)
            torch._foreach_add_(step, grads, alpha=-lr)
            torch._foreach_add_(params, step)
        else:
            torch._foreach_add_(params, velocity)


class KerasRMSprop(KerasOptimizer):
    """Keras' RMSprop: v = rho * v + (1 - rho) * g^2; step = lr * g / sqrt(v + epsilon);
    with momentum, m = momentum * m + step; w -= m (else w -= step)."""

    def __init__(self, params, lr: float, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7):
        super().__init__(params, lr=lr, rho=rho, momentum=momentum, epsilon=epsilon)
        self.STATE = ("velocity", "momentum") if momentum > 0 else ("velocity",)

    def update(self, params, grads, slots, t, group):
        rho, momentum, velocity = group["rho"], group["momentum"], slots[0]
        torch._foreach_mul_(velocity, rho)
        torch._foreach_addcmul_(velocity, grads, grads, value=1 - rho)
        denominator = torch._foreach_add(velocity, group["epsilon"])
        torch._foreach_sqrt_(denominator)
        step = torch._foreach_div(grads, denominator)
        torch._foreach_mul_(step, group["lr"])
        if momentum > 0:
            moments = slots[1]
            torch._foreach_mul_(moments, momentum)
            torch._foreach_add_(moments, step)
            step = moments
        torch._foreach_sub_(params, step)
