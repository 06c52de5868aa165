"""The lesson's vocabulary as plain specs: Conv2D, MaxPooling2D, Flatten, Dense.

A spec knows its Keras name, its output shape (channels-last, as Keras prints it), its
parameter count and how to build the matching torch module. Shapes are (H, W, C) for maps
and (F,) for vectors, never including the batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from mnist_cnn.errors import ModelFileError

Shape = tuple[int, ...]
ACTIVATIONS = ("relu", "softmax", None)  # softmax only on the last layer: the model emits logits


@dataclass(frozen=True)
class Conv2D:
    """A 'valid' 2-D convolution with a square kernel, stride 1, as in the lesson."""

    filters: int
    kernel_size: int = 3
    activation: str | None = "relu"
    keras_name = "conv2d"

    def output_shape(self, shape: Shape) -> Shape:
        h, w, _ = shape
        k = self.kernel_size
        return (h - k + 1, w - k + 1, self.filters)

    def params(self, shape: Shape) -> int:
        return (self.kernel_size**2 * shape[-1] + 1) * self.filters

    def build(self, shape: Shape) -> nn.Module:
        conv = nn.Conv2d(shape[-1], self.filters, self.kernel_size)
        _glorot_uniform(conv.weight, fan_in=self.kernel_size**2 * shape[-1],
                        fan_out=self.kernel_size**2 * self.filters)
        nn.init.zeros_(conv.bias)  # Keras' default bias initialiser
        return conv


@dataclass(frozen=True)
class MaxPooling2D:
    """Max pooling; the stride defaults to the pool size, as in Keras."""

    pool_size: int = 2
    keras_name = "max_pooling2d"

    def output_shape(self, shape: Shape) -> Shape:
        h, w, c = shape
        return (h // self.pool_size, w // self.pool_size, c)  # 'valid': a ragged edge is dropped

    def params(self, shape: Shape) -> int:
        return 0

    def build(self, shape: Shape) -> nn.Module:
        return nn.MaxPool2d(self.pool_size)


class _ChannelsLastFlatten(nn.Module):
    """Flatten in Keras' (H, W, C) order, so Dense weights mean the same as in Keras."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)  # (B, C, H, W) -> (B, H*W*C)


@dataclass(frozen=True)
class Flatten:
    keras_name = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def params(self, shape: Shape) -> int:
        return 0

    def build(self, shape: Shape) -> nn.Module:
        return _ChannelsLastFlatten()


@dataclass(frozen=True)
class Dense:
    """A fully connected layer; 'softmax' is shown in summaries but left to the loss."""

    units: int
    activation: str | None = None
    keras_name = "dense"

    def output_shape(self, shape: Shape) -> Shape:
        return (self.units,)

    def params(self, shape: Shape) -> int:
        return (shape[-1] + 1) * self.units

    def build(self, shape: Shape) -> nn.Module:
        linear = nn.Linear(shape[-1], self.units)
        _glorot_uniform(linear.weight, fan_in=shape[-1], fan_out=self.units)
        nn.init.zeros_(linear.bias)
        return linear


Layer = Conv2D | MaxPooling2D | Flatten | Dense
LAYER_TYPES: dict[str, type] = {t.__name__: t for t in (Conv2D, MaxPooling2D, Flatten, Dense)}


def _glorot_uniform(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Keras' default kernel initialiser: U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-limit, limit)


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    """A JSON-ready description: {"type": "Conv2D", "filters": 32, ...}."""
    return {"type": type(layer).__name__, **asdict(layer)}


def layer_from_dict(data: Any) -> Layer:
    """Rebuild a spec from `layer_to_dict` output, validating names and types strictly."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) \
            or data["type"] not in LAYER_TYPES:
        raise ModelFileError(f"unknown layer description {data!r}; known types: "
                             f"{', '.join(LAYER_TYPES)}")
    cls = LAYER_TYPES[data["type"]]
    kwargs = {k: v for k, v in data.items() if k != "type"}
    allowed = {f.name: f for f in fields(cls)}
    for key, value in kwargs.items():
        if key not in allowed:
            raise ModelFileError(f"{data['type']}: unknown field {key!r}")
        if key == "activation":
            if value not in ACTIVATIONS:
                raise ModelFileError(f"{data['type']}: unknown activation {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
            raise ModelFileError(f"{data['type']}: {key} must be an integer in 1..4096")
    try:
        return cls(**kwargs)
    except TypeError:  # a required field is missing
        raise ModelFileError(f"{data['type']}: missing fields in {data!r}") from None
