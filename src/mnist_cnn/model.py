"""Named architectures and the one builder that turns a spec into a torch module.

The module returns logits; the lesson's final softmax is applied where probabilities are
shown, so the loss is computed stably while the summary still lists `softmax`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mnist_cnn.errors import ModelFileError, UsageError
from mnist_cnn.layers import (
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPooling2D,
    Shape,
    layer_from_dict,
    layer_to_dict,
)

INPUT_SHAPE: Shape = (28, 28, 1)  # MNIST, channels-last as Keras sees it


@dataclass(frozen=True)
class Architecture:
    """A named stack of layer specs on a fixed input shape."""

    name: str
    layers: tuple[Layer, ...]
    input_shape: Shape = INPUT_SHAPE

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": list(self.input_shape),
                "layers": [layer_to_dict(layer) for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: Any) -> Architecture:
        """Rebuild from `to_dict` output; a malformed description raises ModelFileError."""
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise ModelFileError("architecture must be an object with a 'layers' list")
        shape = data.get("input_shape")
        if (not isinstance(shape, list) or len(shape) != 3
                or not all(isinstance(d, int) and 1 <= d <= 1024 for d in shape)):
            raise ModelFileError(f"architecture input_shape {shape!r} is not [H, W, C]")
        arch = cls(str(data.get("name", "custom")),
                   tuple(layer_from_dict(d) for d in data["layers"]), tuple(shape))
        arch.shapes()  # validates that every layer fits its input
        return arch

    def shapes(self) -> list[Shape]:
        """Each layer's output shape (channels-last, no batch dimension)."""
        shapes, shape = [], self.input_shape
        for layer in self.layers:
            if isinstance(layer, (Conv2D, MaxPooling2D)) and len(shape) != 3:
                raise ModelFileError(f"{type(layer).__name__} needs a (H, W, C) input")
            if isinstance(layer, Dense) and len(shape) != 1:
                raise ModelFileError("Dense needs a flat input: add Flatten before it")
            shape = layer.output_shape(shape)
            if min(shape) < 1:
                raise ModelFileError(f"{type(layer).__name__} leaves an empty output {shape}")
            shapes.append(shape)
        return shapes

    def keras_names(self) -> list[str]:
        """Keras' automatic names: conv2d, max_pooling2d, conv2d_1, ..., dense_1."""
        seen: Counter[str] = Counter()
        names = []
        for layer in self.layers:
            base = layer.keras_name
            names.append(base if seen[base] == 0 else f"{base}_{seen[base]}")
            seen[base] += 1
        return names


_CONV_BASE = (Conv2D(32), MaxPooling2D(), Conv2D(64), MaxPooling2D(), Conv2D(64))
_HEAD = (Flatten(), Dense(64, "relu"), Dense(10, "softmax"))

ARCHITECTURES: dict[str, Architecture] = {
    # The lesson's program: 93,322 parameters.
    "seed": Architecture("seed", _CONV_BASE + _HEAD),
    # The lesson's alternative with a third pool: the conv base ends at 1x1x64; 60,554 params.
    "seed-pool3": Architecture("seed-pool3", _CONV_BASE + (MaxPooling2D(),) + _HEAD),
}


def get_architecture(name: str) -> Architecture:
    """The named architecture, or a UsageError listing the valid names."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UsageError(f"unknown architecture {name!r}; choose one of: "
                         f"{', '.join(ARCHITECTURES)}") from None


def conv_base(arch: Architecture) -> Architecture:
    """The architecture up to (not including) Flatten: the lesson's first summary."""
    cut = next((i for i, layer in enumerate(arch.layers) if isinstance(layer, Flatten)),
               len(arch.layers))
    return Architecture(arch.name, arch.layers[:cut], arch.input_shape)


class Net(nn.Module):
    """The built network: takes (B, 1, 28, 28) floats in [0, 1], returns (B, 10) logits."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.names = arch.keras_names()
        shapes = [arch.input_shape, *arch.shapes()]
        # Keyed by Keras name, so weight files read "conv2d.weight", "dense_1.bias", ...
        self.layers = nn.ModuleDict({name: layer.build(shape) for name, layer, shape
                                     in zip(self.names, arch.layers, shapes, strict=False)})
        # ReLU is applied here; softmax is left to the loss and to whoever shows probabilities.
        self.relu = [getattr(layer, "activation", None) == "relu" for layer in arch.layers]
        # The fast path applies a conv's ReLU after the max-pool that follows it: max and
        # ReLU commute exactly (both monotone), and ReLU then touches a quarter of the values.
        pooled_next = [isinstance(nxt, MaxPooling2D) for nxt in arch.layers[1:]] + [False]
        self._relu_at = [False] * len(self.relu)
        for i, relu in enumerate(self.relu):
            if relu:
                self._relu_at[i + 1 if pooled_next[i] else i] = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, relu in zip(self.layers.values(), self._relu_at, strict=True):
            x = layer(x)
            if relu:
                x = torch.relu(x)
        return x

    def forward_all(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Every layer's output (after its activation), named as Keras names it; the last
        layer's output is left as logits."""
        outputs = []
        for (name, layer), relu in zip(self.layers.items(), self.relu, strict=True):
            x = layer(x)
            if relu:
                x = torch.relu(x)
            outputs.append((name, x))
        return outputs


def build_model(arch: Architecture | str, seed: int | None = None) -> Net:
    """Build `arch` with Keras' initialisation; `seed` makes the weights reproducible."""
    if isinstance(arch, str):
        arch = get_architecture(arch)
    if seed is not None:
        torch.manual_seed(seed)
    return Net(arch)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
