"""What `compile()` settles: the optimiser, the loss and the metrics, checked against the
model so a mistake is one clear error at compile time, not a wrong answer later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mnist_cnn.errors import ArchitectureError, UsageError
from mnist_cnn.model import Architecture
from mnist_cnn.optimizers import OptimizerSpec

LOSSES = {"sparse_categorical_crossentropy": "sparse", "categorical_crossentropy": "categorical"}
ACCURACY = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")


@dataclass(frozen=True)
class Loss:
    """keras.losses.SparseCategoricalCrossentropy / CategoricalCrossentropy."""

    labels: str  # "sparse": class indices; "categorical": one-hot rows
    from_logits: bool = False


@dataclass(frozen=True)
class Compiled:
    optimizer: OptimizerSpec
    loss: Loss
    accuracy: bool  # whether 'accuracy' is among the metrics


def _optimizer(value: Any) -> OptimizerSpec:
    if isinstance(value, OptimizerSpec):
        return value
    if isinstance(value, str):
        return OptimizerSpec.named(value.lower())
    raise UsageError(f"optimizer {value!r}: use 'adam', 'sgd', 'rmsprop' or "
                     "keras.optimizers.Adam/SGD/RMSprop(learning_rate=...)")


def _loss(value: Any) -> Loss:
    if isinstance(value, Loss):
        return value
    if isinstance(value, str) and value in LOSSES:
        return Loss(LOSSES[value])
    raise UsageError(f"loss {value!r}: mnist-cnn trains with "
                     f"{' or '.join(repr(k) for k in LOSSES)} (or keras.losses objects)")


def compile_settings(arch: Architecture, optimizer: Any, loss: Any, metrics: Any,
                     unsupported: dict[str, Any]) -> Compiled:
    """Check compile()'s arguments against the model; return the settled ones."""
    if unsupported:
        raise UsageError(f"compile: {', '.join(sorted(unsupported))} not supported")
    arch.check_classifier()
    settled = _loss(loss)
    softmax = arch.layers[-1].activation == "softmax"
    if softmax and settled.from_logits:
        raise ArchitectureError("the last layer applies softmax, so its outputs are "
                                "probabilities: use from_logits=False (the default)")
    if not softmax and not settled.from_logits:
        raise ArchitectureError("the last layer has no softmax, so its outputs are logits: "
                                "add activation='softmax' or use the loss with "
                                "from_logits=True")
    names = [metrics] if isinstance(metrics, str) else list(metrics or [])
    unknown = [m for m in names if m not in ACCURACY]
    if unknown:
        raise UsageError(f"metrics {unknown}: mnist-cnn reports 'accuracy'")
    return Compiled(_optimizer(optimizer), settled, bool(names))
