"""The lesson's vocabulary as plain specs, with Keras' semantics.

Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dense, Dropout and BatchNormalization.
A spec validates its own settings when it is made (ints or pairs wherever Keras takes both),
and knows its Keras name, its output shape (channels-last, as Keras prints it), its
parameter count, the torch module that computes it, and how its weights map to Keras'.
Shapes are (H, W, C) for maps and (F,) for vectors, never including the batch.

Padding follows Keras (TensorFlow): 'valid' keeps only whole windows, floor((n - k) / s) + 1;
'same' gives ceil(n / s) and pads the missing cells, the odd one after (bottom, right).
Max pooling pads with -inf, average pooling averages the real cells only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from torch import nn

from mnist_cnn.errors import ArchitectureError
from mnist_cnn.modules import BatchNorm, ChannelsLastFlatten, Conv2d, Pool2d, glorot_uniform

Shape = tuple[int, ...]
Pair = tuple[int, int]
ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax")  # and None (Keras' 'linear')
PADDINGS = ("valid", "same")
MAX_UNITS = 4096  # filters of a conv, units of a dense layer
MAX_SIDE = 64  # kernel, pool and stride sides; the input is 28x28


# ---------------------------------------------------------------- settings, checked

def _int(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ArchitectureError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


def _pair(value: Any, name: str) -> Pair:
    """An int or a pair of ints, as Keras takes kernel sizes, pool sizes and strides."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (_int(value[0], name, 1, MAX_SIDE), _int(value[1], name, 1, MAX_SIDE))
    if isinstance(value, int) and not isinstance(value, bool):
        side = _int(value, name, 1, MAX_SIDE)
        return (side, side)
    raise ArchitectureError(f"{name} must be an integer or a pair of integers, got {value!r}")


def _activation(value: Any) -> str | None:
    if value is None or value == "linear":
        return None
    if value not in ACTIVATIONS:
        raise ArchitectureError(f"unknown activation {value!r}; choose one of: "
                                f"{', '.join(ACTIVATIONS)}, linear (or None)")
    return value


def _padding(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in PADDINGS:
        raise ArchitectureError(f"padding must be 'valid' or 'same', got {value!r}")
    return value.lower()


def _fraction(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not low <= value < high:
        raise ArchitectureError(f"{name} must be a number in [{low}, {high}), got {value!r}")
    return float(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ArchitectureError(f"{name} must be true or false, got {value!r}")
    return value


def _set(spec: Any, **values: Any) -> None:
    for key, value in values.items():  # frozen dataclasses: normalise in __post_init__
        object.__setattr__(spec, key, value)


# ---------------------------------------------------------------- window arithmetic

def _side(n: int, k: int, s: int, padding: str) -> int:
    return math.ceil(n / s) if padding == "same" else (n - k) // s + 1


def _pads(shape: Shape, kernel: Pair, strides: Pair, padding: str) -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) for Keras' 'same' padding; zeros for 'valid'."""
    if padding == "valid":
        return (0, 0, 0, 0)
    pads = []
    for n, k, s in zip(shape[:2], kernel, strides, strict=True):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return (left, right, top, bottom)


def _window_output(shape: Shape, kernel: Pair, strides: Pair, padding: str,
                   what: str) -> tuple[int, int]:
    if len(shape) != 3:
        raise ArchitectureError(f"needs an (H, W, C) input, got {shape}: put it before Flatten")
    h, w = (_side(n, k, s, padding) for n, k, s in zip(shape[:2], kernel, strides, strict=True))
    if h < 1 or w < 1:
        raise ArchitectureError(f"{what} {kernel[0]}x{kernel[1]} is larger than its input "
                                f"{shape[0]}x{shape[1]} (padding 'valid')")
    return h, w


def _size(pair: Pair) -> str:
    return f"{pair[0]}x{pair[1]}"


# ---------------------------------------------------------------- the specs

@dataclass(frozen=True)
class Conv2D:
    """A 2-D convolution: `filters` kernels of `kernel_size`, moved by `strides`."""

    filters: int
    kernel_size: Pair | int = (3, 3)
    strides: Pair | int = (1, 1)
    padding: str = "valid"
    activation: str | None = None
    use_bias: bool = True
    keras_name: ClassVar[str] = "conv2d"

    def __post_init__(self) -> None:
        _set(self, filters=_int(self.filters, "filters", 1, MAX_UNITS),
             kernel_size=_pair(self.kernel_size, "kernel_size"),
             strides=_pair(self.strides, "strides"), padding=_padding(self.padding),
             activation=_activation(self.activation), use_bias=_bool(self.use_bias, "use_bias"))

    def output_shape(self, shape: Shape) -> Shape:
        return (*_window_output(shape, self.kernel_size, self.strides, self.padding,
                                "kernel"), self.filters)

    def params(self, shape: Shape) -> int:
        return (math.prod(self.kernel_size) * shape[-1] + self.use_bias) * self.filters

    def build(self, shape: Shape) -> nn.Module:
        k = math.prod(self.kernel_size)
        conv = Conv2d(shape[-1], self.filters, self.kernel_size, self.strides,
                       _pads(shape, self.kernel_size, self.strides, self.padding),
                       self.use_bias)
        glorot_uniform(conv.weight, fan_in=k * shape[-1], fan_out=k * self.filters)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)  # Keras' default bias initialiser
        return conv

    def keras_to_torch(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Keras' [kernel (kh, kw, in, out), bias] -> torch's weight (out, in, kh, kw), bias."""
        out = {"weight": arrays[0].transpose(3, 2, 0, 1)}
        return out | ({"bias": arrays[1]} if self.use_bias else {})

    def torch_to_keras(self, params: dict[str, np.ndarray]) -> list[np.ndarray]:
        weights = [params["weight"].transpose(2, 3, 1, 0)]
        return weights + ([params["bias"]] if self.use_bias else [])

    def detail(self) -> str:
        parts = [_size(self.kernel_size)]
        if self.strides != (1, 1):
            parts.append(f"stride {_size(self.strides)}")
        if self.padding == "same":
            parts.append("same")
        return ", ".join(parts + [self.activation or ""]).rstrip(", ")


@dataclass(frozen=True)
class _Pooling:
    """Shared by MaxPooling2D and AveragePooling2D; strides default to the pool size."""

    pool_size: Pair | int = (2, 2)
    strides: Pair | int | None = None
    padding: str = "valid"
    kind: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        pool = _pair(self.pool_size, "pool_size")
        strides = pool if self.strides is None else _pair(self.strides, "strides")
        _set(self, pool_size=pool, strides=strides, padding=_padding(self.padding))

    def output_shape(self, shape: Shape) -> Shape:
        return (*_window_output(shape, self.pool_size, self.strides, self.padding, "pool"),
                shape[-1])

    def params(self, shape: Shape) -> int:
        return 0

    def build(self, shape: Shape) -> nn.Module:
        return Pool2d(self.kind, self.pool_size, self.strides,
                       _pads(shape, self.pool_size, self.strides, self.padding))

    def detail(self) -> str:
        parts = [_size(self.pool_size)]
        if self.strides != self.pool_size:
            parts.append(f"stride {_size(self.strides)}")
        return ", ".join(parts + (["same"] if self.padding == "same" else []))


@dataclass(frozen=True)
class MaxPooling2D(_Pooling):
    """The largest value of each window ("sample the largest value in a region")."""

    keras_name: ClassVar[str] = "max_pooling2d"


@dataclass(frozen=True)
class AveragePooling2D(_Pooling):
    """The mean of each window."""

    kind: ClassVar[str] = "average"
    keras_name: ClassVar[str] = "average_pooling2d"


@dataclass(frozen=True)
class Flatten:
    """Maps (H, W, C) to one vector, in Keras' channels-last order."""

    keras_name: ClassVar[str] = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def params(self, shape: Shape) -> int:
        return 0

    def build(self, shape: Shape) -> nn.Module:
        return ChannelsLastFlatten()

    def detail(self) -> str:
        return ""


@dataclass(frozen=True)
class Dense:
    """A fully connected layer; a final 'softmax' is shown in summaries but left to the loss."""

    units: int
    activation: str | None = None
    use_bias: bool = True
    keras_name: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        _set(self, units=_int(self.units, "units", 1, MAX_UNITS),
             activation=_activation(self.activation), use_bias=_bool(self.use_bias, "use_bias"))

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 1:
            raise ArchitectureError(f"needs a flat input, got {shape}: add Flatten before it")
        return (self.units,)

    def params(self, shape: Shape) -> int:
        return (shape[-1] + self.use_bias) * self.units

    def build(self, shape: Shape) -> nn.Module:
        linear = nn.Linear(shape[-1], self.units, bias=self.use_bias)
        glorot_uniform(linear.weight, fan_in=shape[-1], fan_out=self.units)
        if linear.bias is not None:
            nn.init.zeros_(linear.bias)
        return linear

    def keras_to_torch(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Keras' [kernel (in, out), bias] -> torch's weight (out, in), bias."""
        return {"weight": arrays[0].T} | ({"bias": arrays[1]} if self.use_bias else {})

    def torch_to_keras(self, params: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [params["weight"].T] + ([params["bias"]] if self.use_bias else [])

    def detail(self) -> str:
        return f"{self.units} units" + (f", {self.activation}" if self.activation else "")


@dataclass(frozen=True)
class Dropout:
    """While training, zeroes each value with probability `rate` and scales the rest by
    1 / (1 - rate); at inference it passes values through."""

    rate: float
    keras_name: ClassVar[str] = "dropout"

    def __post_init__(self) -> None:
        _set(self, rate=_fraction(self.rate, "rate", 0.0, 1.0))

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def params(self, shape: Shape) -> int:
        return 0

    def build(self, shape: Shape) -> nn.Module:
        return nn.Dropout(self.rate)

    def detail(self) -> str:
        return f"rate {self.rate:g}"


@dataclass(frozen=True)
class BatchNormalization:
    """Normalises each channel by batch statistics while training, by their moving averages
    at inference; then scales by gamma and shifts by beta (Keras' defaults)."""

    momentum: float = 0.99
    epsilon: float = 1e-3
    keras_name: ClassVar[str] = "batch_normalization"

    def __post_init__(self) -> None:
        _set(self, momentum=_fraction(self.momentum, "momentum", 0.0, 1.0),
             epsilon=_fraction(self.epsilon, "epsilon", 1e-12, 1.0))

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def params(self, shape: Shape) -> int:
        return 4 * shape[-1]  # gamma, beta (trained) and the two moving statistics

    def non_trainable(self, shape: Shape) -> int:
        return 2 * shape[-1]

    def build(self, shape: Shape) -> nn.Module:
        return BatchNorm(shape[-1], self.momentum, self.epsilon)

    def keras_to_torch(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        names = ("gamma", "beta", "moving_mean", "moving_variance")
        return dict(zip(names, arrays, strict=True))

    def torch_to_keras(self, params: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [params[k] for k in ("gamma", "beta", "moving_mean", "moving_variance")]

    def detail(self) -> str:
        return ""


Layer = Conv2D | MaxPooling2D | AveragePooling2D | Flatten | Dense | Dropout | BatchNormalization
LAYER_TYPES: dict[str, type] = {t.__name__: t for t in (
    Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dense, Dropout, BatchNormalization)}


def has_weights(layer: Layer) -> bool:
    return hasattr(layer, "keras_to_torch")


def non_trainable(layer: Layer, shape: Shape) -> int:
    """Parameters that training does not change by gradient (BatchNormalization's moving
    statistics)."""
    return layer.non_trainable(shape) if isinstance(layer, BatchNormalization) else 0


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    """A JSON-ready description: {"type": "Conv2D", "filters": 32, "kernel_size": [3, 3], ...}."""
    values = {f.name: getattr(layer, f.name) for f in fields(layer)}
    return {"type": type(layer).__name__,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}


def layer_from_dict(data: Any) -> Layer:
    """Rebuild a spec from `layer_to_dict` output (older files' single ints too), strictly:
    an unknown type or field, a missing field or a bad value is an ArchitectureError."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) \
            or data["type"] not in LAYER_TYPES:
        kind = data.get("type") if isinstance(data, dict) else data
        raise ArchitectureError(f"unknown layer type {kind!r}; supported: "
                                f"{', '.join(LAYER_TYPES)}")
    cls = LAYER_TYPES[data["type"]]
    kwargs = {k: v for k, v in data.items() if k != "type"}
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ArchitectureError(f"unknown setting {unknown[0]!r}; {data['type']} takes "
                                f"{', '.join(sorted(allowed)) or 'no settings'}")
    try:
        return cls(**kwargs)
    except TypeError:  # a required field is missing
        raise ArchitectureError(f"missing settings in {data!r}") from None
