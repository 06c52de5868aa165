"""Keras' layer classes, as the lesson writes them: `layers.Conv2D(32, (3, 3),
activation='relu', input_shape=(28, 28, 1))`, `layers.MaxPooling2D((2, 2))`, ...

Each wraps one spec of `mnist_cnn.layers` (which checks the settings) and carries what a
Keras layer carries besides: `input_shape=` on the first layer, and once it belongs to a
model its `name`, `output_shape`, `count_params()` and `get_weights()`. A Keras argument
that mnist-cnn does not implement is an error that names it, never silently ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_cnn import layers as specs
from mnist_cnn.errors import ArchitectureError

if TYPE_CHECKING:
    from mnist_cnn.keras.models import Sequential

INPUT_SHAPES = ((28, 28, 1), (28, 28))  # MNIST, with or without the channel axis


# Keras arguments accepted when they hold what mnist-cnn does anyway (Keras' defaults).
_DEFAULTS = {"data_format": (None, "channels_last"), "dilation_rate": (1, (1, 1), [1, 1]),
             "groups": (1,), "dtype": (None, "float32"), "trainable": (True,),
             "kernel_initializer": ("glorot_uniform",), "bias_initializer": ("zeros",)}


def checked_input_shape(shape: Any) -> tuple[int, ...]:
    """A Keras input shape (no batch axis), checked to be MNIST's."""
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ArchitectureError(f"input shape {shape!r} is not a tuple of sizes") from None
    if shape not in INPUT_SHAPES:
        raise ArchitectureError(f"input shape {shape}: mnist-cnn reads 28x28 images, "
                                "input_shape=(28, 28, 1)")
    return shape


class Input:
    """`keras.Input(shape=(28, 28, 1))`: the model's input, as Keras 3 writes it."""

    def __init__(self, shape: Any, batch_size: int | None = None, name: str | None = None):
        self.shape = checked_input_shape(shape)


class Layer:
    """One layer of a Sequential model: a spec, plus Keras' per-layer extras."""

    def __init__(self, spec: specs.Layer, input_shape: Any = None, name: str | None = None,
                 **unsupported: Any):
        kind = type(spec).__name__
        unsupported = {k: v for k, v in unsupported.items() if v not in _DEFAULTS.get(k, ())}
        if unsupported:
            raise ArchitectureError(f"{kind}: {', '.join(sorted(unsupported))} "
                                    f"{'is' if len(unsupported) == 1 else 'are'} not "
                                    "supported by mnist-cnn")
        if name is not None:
            raise ArchitectureError(f"{kind}: name= is not supported; layers get Keras' "
                                    "automatic names (conv2d, conv2d_1, ...)")
        self.spec = spec
        self.input_shape = None if input_shape is None else checked_input_shape(input_shape)
        self._model: Sequential | None = None
        self._index = -1

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name or '(not in a model)'}>"

    @property
    def name(self) -> str | None:
        """Keras' automatic name (conv2d, conv2d_1, ...) once the layer is in a model."""
        return self._model.architecture().keras_names()[self._index] if self._model else None

    @property
    def output_shape(self) -> tuple[int | None, ...] | None:
        if self._model is None:
            return None
        return (None, *self._model.architecture().shapes()[self._index])

    def count_params(self) -> int:
        if self._model is None:
            raise ArchitectureError(f"{type(self).__name__} is not in a model yet")
        arch = self._model.architecture()
        shape = ([arch.input_shape] + arch.shapes())[self._index]
        return self.spec.params(shape)

    def get_weights(self) -> list[np.ndarray]:
        """The layer's weights in Keras' layout (kernels HWIO, Dense kernels (in, out))."""
        if self._model is None or not specs.has_weights(self.spec):
            return []
        return self._model._layer_weights(self._index)

    def set_weights(self, weights: list[np.ndarray]) -> None:
        if self._model is None:
            raise ArchitectureError(f"{type(self).__name__} is not in a model yet")
        self._model._set_layer_weights(self._index, weights)


class Conv2D(Layer):
    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1),
                 padding: str = "valid", activation: str | None = None, use_bias: bool = True,
                 **kwargs: Any):
        super().__init__(specs.Conv2D(filters, kernel_size, strides, padding, activation,
                                      use_bias), **kwargs)


class MaxPooling2D(Layer):
    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 **kwargs: Any):
        super().__init__(specs.MaxPooling2D(pool_size, strides, padding), **kwargs)


class AveragePooling2D(Layer):
    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 **kwargs: Any):
        super().__init__(specs.AveragePooling2D(pool_size, strides, padding), **kwargs)


class Flatten(Layer):
    def __init__(self, **kwargs: Any):
        super().__init__(specs.Flatten(), **kwargs)


class Dense(Layer):
    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 **kwargs: Any):
        super().__init__(specs.Dense(units, activation, use_bias), **kwargs)


class Dropout(Layer):
    def __init__(self, rate: float, **kwargs: Any):
        super().__init__(specs.Dropout(rate), **kwargs)


class BatchNormalization(Layer):
    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs: Any):
        super().__init__(specs.BatchNormalization(momentum, epsilon), **kwargs)


_WRAPPERS = {cls.__name__: cls for cls in (Conv2D, MaxPooling2D, AveragePooling2D, Flatten,
                                           Dense, Dropout, BatchNormalization)}


def from_spec(spec: specs.Layer) -> Layer:
    """The Keras-style layer around an existing spec (a loaded model's layers)."""
    layer = Layer.__new__(_WRAPPERS[type(spec).__name__])
    Layer.__init__(layer, spec)
    return layer
