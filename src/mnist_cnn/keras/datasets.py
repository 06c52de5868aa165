"""`keras.datasets`: `mnist.load_data()` and `fashion_mnist.load_data()`, in Keras' shapes,
through mnist-cnn's verified data lookup ($MNIST_CNN_DATA, the cache, ...)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def _loader(name: str):
    def load_data(path: str | None = None) -> tuple[tuple[np.ndarray, np.ndarray],
                                                    tuple[np.ndarray, np.ndarray]]:
        """((x_train, y_train), (x_test, y_test)): uint8 (60000, 28, 28), (60000,),
        (10000, 28, 28), (10000,). `path` is a data folder (like --data-dir)."""
        from mnist_cnn.data import load_data as load

        return load(name, path)
    return load_data


mnist = SimpleNamespace(load_data=_loader("mnist"))
fashion_mnist = SimpleNamespace(load_data=_loader("fashion-mnist"))
