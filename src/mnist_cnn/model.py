"""Architectures (any valid stack of the lesson's layers; named ones) and the one builder that
turns a spec into a torch module.

The module returns logits; the lesson's final softmax is applied where probabilities are
shown, so the loss is computed stably while the summary still lists `softmax`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnist_cnn.errors import ArchitectureError, UsageError
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
CLASSES = 10
MAX_LAYERS = 64
MAX_PARAMS = 10_000_000  # a hundred times the lesson's network
MAX_SPEC_BYTES = 1 << 20  # an architecture file is a few KB


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
        """Rebuild from `to_dict` output; anything malformed raises ArchitectureError naming
        the layer and the reason. The result is validated (see `validate`)."""
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise ArchitectureError("an architecture is an object with a 'layers' list")
        shape = data.get("input_shape", list(INPUT_SHAPE))
        if shape != list(INPUT_SHAPE):
            raise ArchitectureError(f"input_shape {shape!r}: mnist-cnn reads 28x28x1 images "
                                    "([28, 28, 1])")
        if len(data["layers"]) > MAX_LAYERS:
            raise ArchitectureError(f"{len(data['layers'])} layers; at most {MAX_LAYERS}")
        name = data.get("name", "custom")
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise ArchitectureError(f"name must be a short string, got {name!r}")
        layers = []
        for i, entry in enumerate(data["layers"], start=1):
            try:
                layers.append(layer_from_dict(entry))
            except ArchitectureError as exc:
                raise ArchitectureError(f"layer {i}: {exc}") from None
        return cls(ALIASES.get(name, name), tuple(layers)).validate()

    def validate(self) -> Architecture:
        """Check that every layer fits its input and the whole is of bounded size; return
        self. Errors name the layer (position, Keras name, type) and the reason."""
        if not self.layers:
            raise ArchitectureError("the model has no layers")
        if len(self.layers) > MAX_LAYERS:
            raise ArchitectureError(f"{len(self.layers)} layers; at most {MAX_LAYERS}")
        self.shapes()
        total = self.param_count()
        if total > MAX_PARAMS:
            raise ArchitectureError(f"{total:,} parameters; at most {MAX_PARAMS:,}")
        return self

    def shapes(self) -> list[Shape]:
        """Each layer's output shape (channels-last, no batch dimension)."""
        shapes, shape = [], self.input_shape
        for i, (name, layer) in enumerate(zip(self.keras_names(), self.layers, strict=True)):
            try:
                shape = layer.output_shape(shape)
            except ArchitectureError as exc:
                raise ArchitectureError(f"layer {i + 1} ({name}: {type(layer).__name__}): "
                                        f"{exc}") from None
            shapes.append(shape)
        return shapes

    def param_count(self) -> int:
        inputs = [self.input_shape, *self.shapes()]
        return sum(layer.params(shape) for layer, shape in zip(self.layers, inputs, strict=False))

    def keras_names(self) -> list[str]:
        """Keras' automatic names: conv2d, max_pooling2d, conv2d_1, ..., dense_1."""
        seen: Counter[str] = Counter()
        names = []
        for layer in self.layers:
            base = layer.keras_name
            names.append(base if seen[base] == 0 else f"{base}_{seen[base]}")
            seen[base] += 1
        return names

    def check_classifier(self, classes: int = CLASSES) -> Architecture:
        """A network that can be trained and asked for digits ends in Dense(classes) with a
        softmax (or no activation: its outputs are then the logits)."""
        last = self.layers[-1] if self.layers else None
        if not isinstance(last, Dense) or last.units != classes \
                or last.activation not in ("softmax", None):
            names = self.keras_names()
            what = f"{names[-1]} ({type(last).__name__})" if last is not None else "nothing"
            raise ArchitectureError(f"the last layer must be Dense({classes}, "
                                    f"activation='softmax') to read digits; it is {what}")
        return self


_CONV_BASE = (Conv2D(32, 3, activation="relu"), MaxPooling2D(2),
              Conv2D(64, 3, activation="relu"), MaxPooling2D(2),
              Conv2D(64, 3, activation="relu"))
_HEAD = (Flatten(), Dense(64, "relu"), Dense(10, "softmax"))

ARCHITECTURES: dict[str, Architecture] = {
    # The lesson's program: 93,322 parameters.
    "lesson": Architecture("lesson", _CONV_BASE + _HEAD),
    # The lesson's second form, with a third pool: the conv base ends at 1x1x64; 60,554
    # parameters.
    "lesson-pool3": Architecture("lesson-pool3", _CONV_BASE + (MaxPooling2D(2),) + _HEAD),
}
ALIASES = {"seed": "lesson", "seed-pool3": "lesson-pool3"}  # the names of earlier versions


def get_architecture(name: str) -> Architecture:
    """A named architecture (earlier names too), or a UsageError listing the valid names."""
    try:
        return ARCHITECTURES[ALIASES.get(name, name)]
    except KeyError:
        raise UsageError(f"unknown architecture {name!r}; choose one of: "
                         f"{', '.join(ARCHITECTURES)}, or a JSON file of layers") from None


def resolve_architecture(name_or_file: str) -> Architecture:
    """`--arch`: a named architecture, or a JSON file holding a layer list, an object with
    "layers" (as in a run's model.json "architecture"), or a whole model.json."""
    path = Path(name_or_file)
    if name_or_file in ARCHITECTURES or name_or_file in ALIASES or path.suffix != ".json":
        return get_architecture(name_or_file)
    from mnist_cnn.files import read_json

    spec = read_json(path, MAX_SPEC_BYTES, ArchitectureError, "architecture file")
    if isinstance(spec, dict) and "architecture" in spec:
        spec = spec["architecture"]
    if isinstance(spec, list):
        spec = {"layers": spec}
    if isinstance(spec, dict) and "name" not in spec:
        spec = {**spec, "name": path.stem}
    try:
        return Architecture.from_dict(spec)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{path}: {exc}") from None


def conv_base(arch: Architecture) -> Architecture:
    """The architecture up to (not including) Flatten: the lesson's first summary."""
    cut = next((i for i, layer in enumerate(arch.layers) if isinstance(layer, Flatten)),
               len(arch.layers))
    return Architecture(arch.name, arch.layers[:cut], arch.input_shape)


_ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
                "softmax": lambda x: torch.softmax(x, dim=1)}  # dim 1: channels or features


class Net(nn.Module):
    """The built network: takes (B, 1, 28, 28) floats in [0, 1], returns (B, 10) logits
    (the last layer's softmax is left to the loss and to whoever shows probabilities)."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch.validate()
        self.names = arch.keras_names()
        shapes = [arch.input_shape, *arch.shapes()]
        # Keyed by Keras name, so weight files read "conv2d.weight", "dense_1.bias", ...
        self.layers = nn.ModuleDict({name: layer.build(shape) for name, layer, shape
                                     in zip(self.names, arch.layers, shapes, strict=False)})
        acts = [getattr(layer, "activation", None) for layer in arch.layers]
        if acts and acts[-1] == "softmax":
            acts[-1] = None  # logits out
        self.activations = acts
        # The fast path applies a ReLU after the max-pool that follows it: max and ReLU
        # commute exactly (both monotone; 'same' pads with -inf), and ReLU then touches a
        # quarter of the values.
        self._act_at: list[str | None] = list(acts)
        for i, act in enumerate(acts[:-1]):
            if act == "relu" and isinstance(arch.layers[i + 1], MaxPooling2D) \
                    and self._act_at[i + 1] is None:
                self._act_at[i], self._act_at[i + 1] = None, "relu"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, act in zip(self.layers.values(), self._act_at, strict=True):
            x = layer(x)
            if act is not None:
                x = _ACTIVATIONS[act](x)
        return x

    def forward_all(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Every layer's output (after its activation), named as Keras names it; the last
        layer's output is left as logits."""
        outputs = []
        for (name, layer), act in zip(self.layers.items(), self.activations, strict=True):
            x = layer(x)
            if act is not None:
                x = _ACTIVATIONS[act](x)
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
    """Every number the model holds: parameters and BatchNormalization's moving statistics,
    as Keras' Total params counts them."""
    return sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for b in model.buffers())
