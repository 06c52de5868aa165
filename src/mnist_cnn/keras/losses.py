"""`keras.losses`: the two cross-entropies the lesson's kind of model trains with."""

from __future__ import annotations

from mnist_cnn.keras.compiled import Loss


def SparseCategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802 (Keras' name)
    """Labels are class indices (the lesson's)."""
    return Loss("sparse", bool(from_logits))


def CategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802 (Keras' name)
    """Labels are one-hot rows (keras.utils.to_categorical)."""
    return Loss("categorical", bool(from_logits))
