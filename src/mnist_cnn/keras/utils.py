"""`keras.utils`: a seed for everything random, and one-hot labels."""

from __future__ import annotations

import random

import numpy as np
import torch

from mnist_cnn.errors import UsageError


def set_random_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators, as Keras' function does: the weights,
    the epochs' order and Dropout's masks are then the same on every run."""
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UsageError(f"seed must be an integer in 0..2**32-1, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_categorical(y, num_classes: int | None = None) -> np.ndarray:
    """Class indices -> one-hot float32 rows."""
    labels = np.asarray(y).astype(np.int64).reshape(-1)
    classes = num_classes or int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= classes:
        raise UsageError(f"labels must be in 0..{classes - 1}")
    return np.eye(classes, dtype=np.float32)[labels]
