"""What a training run is asked to do: recipes (settings of the one loop) and the run's
configuration, validated when made, so a bad flag fails before any data is read.

`lesson` is the lesson, faithfully: batch 32, 5 epochs, Adam(1e-3) with Keras' betas and
epsilon, fp32, reshuffled every epoch. `fast` is the same network tuned for time to
accuracy on a CPU; `accurate` is the same network again, trained longer on randomly
distorted images, then on clean ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from mnist_cnn.augment import Augment
from mnist_cnn.datasets import get_dataset
from mnist_cnn.device import DEVICES
from mnist_cnn.errors import UsageError
from mnist_cnn.model import Architecture, get_architecture
from mnist_cnn.optimizers import NAMES as OPTIMIZERS

MAX_SEED = 2**63 - 1
MAX_EPOCHS = 10_000
MAX_BATCH = 65_536


@dataclass(frozen=True)
class Recipe:
    """How to train: every field is a setting of the one loop in train.py."""

    name: str
    epochs: int  # full passes over the training images
    batch_size: int
    lr: float  # the optimiser's learning rate (the peak, under a one-cycle schedule)
    schedule: str  # "constant" (the lesson) or "onecycle" (warm up, then anneal to ~0)
    warmup: float  # fraction of the steps spent warming up under "onecycle"
    precision: str  # "fp32", or "bf16": bfloat16 autocast where the hardware has it
    channels_last: bool  # NHWC activations: the layout oneDNN's CPU convolutions prefer
    label_smoothing: float = 0.0  # of the training loss only; 0 is the lesson's plain loss
    optimizer: str = "adam"  # adam, sgd or rmsprop, with Keras' update rules
    augment: Augment | None = None  # random distortion of each training batch; None: none
    steps_share: float = 1.0  # of the epochs' steps taken (the schedule ends there); 1: all


def planned_steps(recipe: Recipe, images: int, max_steps: int | None = None) -> int:
    """The steps a run of `recipe` takes over `images` training images: its share of its
    epochs' steps (at least one), or `max_steps` if that is fewer."""
    steps = math.ceil(images / recipe.batch_size) * recipe.epochs
    steps = max(1, math.ceil(round(recipe.steps_share * steps, 6)))
    return steps if max_steps is None else min(steps, max_steps)


RECIPES: dict[str, Recipe] = {
    "lesson": Recipe("lesson", epochs=5, batch_size=32, lr=1e-3, schedule="constant",
                     warmup=0.0, precision="fp32", channels_last=True),
    # Less than one pass is enough when the learning rate is pushed high and annealed
    # (one-cycle), and label smoothing keeps the last steps from overfitting; batch 128 in
    # bfloat16 keeps both cores busy while still taking 376 steps (0.8 of an epoch). Chosen
    # on a validation split (first 50,000 training images / last 10,000; docs/BENCHMARKS.md):
    # label smoothing 0.1 (99.00% against 98.71% without), and 0.8 of an epoch at a peak of
    # 2e-2 (98.95% over ten seeds, against 99.06% for a whole epoch, in 20% less time).
    "fast": Recipe("fast", epochs=1, batch_size=128, lr=2e-2, schedule="onecycle",
                   warmup=0.2, precision="bf16", channels_last=True, label_smoothing=0.1,
                   steps_share=0.8),
    # The same network and the fast recipe's schedule, for more epochs on randomly distorted
    # images (each its own rotation, zoom, shift and slant), the last two epochs on clean
    # ones. Every setting was chosen on a validation split (first 50,000 training images /
    # last 10,000): the 12 epochs in bfloat16 over three seeds (8: 99.49%, 12-20: 99.53%),
    # the two clean epochs over five (none: 99.53%, one: 99.57%, two: 99.59%);
    # docs/BENCHMARKS.md.
    "accurate": Recipe("accurate", epochs=12, batch_size=128, lr=1e-2, schedule="onecycle",
                       warmup=0.2, precision="bf16", channels_last=True, label_smoothing=0.1,
                       augment=Augment(rotate=15, scale=0.1, shift=0.1, shear=10,
                                       until=10 / 12)),
}
RECIPE_ALIASES = {"seed": "lesson"}  # the name of earlier versions


def get_recipe(name: str) -> Recipe:
    """A named recipe (earlier names too), or a UsageError listing the valid names."""
    try:
        return RECIPES[RECIPE_ALIASES.get(name, name)]
    except (KeyError, TypeError):
        raise UsageError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")\
            from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig:
    """What the user asked for. None means 'the recipe's value'."""

    arch: Architecture = get_architecture("lesson")  # a name is resolved when made
    dataset: str = "mnist"
    recipe: str = "lesson"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None  # adam, sgd or rmsprop; default the recipe's
    seed: int = 0
    validation_split: float = 0.0  # Keras-style: the *last* fraction of the training set
    max_steps: int | None = None  # stop after this many steps in all (smoke runs)
    device: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.arch, str):
            object.__setattr__(self, "arch", get_architecture(self.arch))
        _check(isinstance(self.arch, Architecture), "arch must be an architecture")
        self.arch.check_classifier()
        get_dataset(self.dataset)
        object.__setattr__(self, "recipe", get_recipe(self.recipe).name)
        for key, high in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH),
                          ("max_steps", 10**9)):
            value = getattr(self, key)
            _check(value is None or (isinstance(value, int) and not isinstance(value, bool)
                                     and 1 <= value <= high),
                   f"--{key.replace('_', '-')} must be an integer in 1..{high:,}")
        _check(self.lr is None or (_number(self.lr) and math.isfinite(self.lr) and self.lr > 0),
               f"--lr must be a finite number above 0, got {self.lr!r}")
        _check(self.optimizer is None or self.optimizer in OPTIMIZERS,
               f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        _check(isinstance(self.seed, int) and not isinstance(self.seed, bool)
               and 0 <= self.seed <= MAX_SEED, "--seed must be an integer in 0..2**63-1")
        _check(_number(self.validation_split) and 0.0 <= self.validation_split < 1.0,
               "--validation-split must be in [0, 1)")
        _check(self.device in DEVICES,
               f"unknown device {self.device!r}; choose one of: {', '.join(DEVICES)}")

    def resolved_recipe(self) -> Recipe:
        """The recipe with this run's explicit settings applied."""
        overrides = {k: v for k, v in (("epochs", self.epochs), ("batch_size", self.batch_size),
                                       ("lr", self.lr), ("optimizer", self.optimizer))
                     if v is not None}
        if self.epochs is not None:  # --epochs N asks for N whole passes
            overrides["steps_share"] = 1.0
        return replace(get_recipe(self.recipe), **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (self.arch.to_dict() if f.name == "arch" else getattr(self, f.name))
                for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        """Rebuild from `to_dict` output (earlier files named the architecture by name)."""
        if not isinstance(data, dict):
            raise UsageError("a training configuration is an object")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        _check(not unknown, f"unknown configuration keys: {', '.join(map(str, unknown))}")
        arch = data.get("arch", "lesson")
        if isinstance(arch, dict):
            arch = Architecture.from_dict(arch)
        _check(isinstance(arch, (str, Architecture)), f"arch {arch!r} is not an architecture")
        try:
            return cls(**{**data, "arch": arch})
        except TypeError as exc:
            raise UsageError(f"a bad training configuration ({exc})") from None
