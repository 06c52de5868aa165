"""Arrays as Keras users hold them -> checked numpy arrays for the loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mnist_cnn.device import resolve_device
from mnist_cnn.errors import UsageError

CLASSES = 10


def device() -> torch.device:
    """Where API models live: CUDA when present, as Keras uses a GPU when it has one."""
    return resolve_device("auto")


def images(x: Any) -> np.ndarray:
    """(N, 28, 28, 1) or (N, 28, 28) floats in [0, 1] (the lesson's `x / 255.0`), or uint8
    0..255 (scaled here) -> an array of (N, 28, 28)."""
    if x is None:
        raise UsageError("no images given")
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28) or len(arr) == 0:
        raise UsageError(f"images must be an array of shape (N, 28, 28, 1) or (N, 28, 28), "
                         f"got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "fiu":
        raise UsageError(f"images must be numbers, got {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise UsageError("images hold NaN or infinite values")
    return arr


def labels(y: Any, count: int, categorical: bool) -> np.ndarray:
    """Class indices (N,) or (N, 1); one-hot rows (N, 10) for categorical_crossentropy."""
    if y is None:
        raise UsageError("no labels given")
    arr = np.asarray(y)
    if categorical:
        if arr.shape != (count, CLASSES):
            raise UsageError(f"categorical_crossentropy needs one-hot labels of shape "
                             f"({count}, {CLASSES}), got {arr.shape}; "
                             "keras.utils.to_categorical makes them")
        return arr.astype(np.float32)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (count,) or arr.dtype.kind not in "iu" and not (
            arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise UsageError(f"labels must be {count} class indices, got an array of shape "
                         f"{arr.shape} ({arr.dtype}); one-hot labels go with "
                         "loss='categorical_crossentropy'")
    arr = arr.astype(np.int64)
    if len(arr) and (arr.min() < 0 or arr.max() >= CLASSES):
        raise UsageError(f"labels must be in 0..{CLASSES - 1}")
    return arr


def label_tensor(y: np.ndarray, on: torch.device) -> torch.Tensor:
    return torch.tensor(y, dtype=torch.float32 if y.ndim == 2 else torch.int64, device=on)


def verbosity(verbose: Any) -> int:
    """Keras' verbose: 'auto' is 1 (a progress bar), 0 silent, 2 one line an epoch."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise UsageError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def batch(batch_size: Any) -> int:
    if batch_size is None:
        return 32
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size
