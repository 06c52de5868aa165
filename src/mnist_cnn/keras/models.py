"""`models.Sequential` and `models.load_model`, as the lesson uses them, on mnist-cnn's engine.

A Sequential model holds Keras-style layers; `compile`, `fit`, `evaluate` and `predict`
drive the same training loop, optimisers and evaluation as `mnist-cnn train`, and `save`
writes the same run directory (or a Keras 3 `.keras` file) that every command reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_cnn.errors import ArchitectureError, UsageError
from mnist_cnn.keras import data as keras_data
from mnist_cnn.keras.compiled import Compiled, compile_settings
from mnist_cnn.keras.layers import Input, Layer, from_spec
from mnist_cnn.layers import has_weights
from mnist_cnn.model import Architecture, Net


class History:
    """What `fit` returns: `.history` is Keras' dict of per-epoch lists."""

    def __init__(self, rows: list[dict[str, float]], params: dict[str, Any], model: Sequential):
        self.epoch = list(range(len(rows)))
        keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
        self.history = {k: [row[k] for row in rows] for k in keys}
        self.params, self.model = params, model


class Sequential:
    """A linear stack of layers: `Sequential()` then `.add(...)`, or `Sequential([...])`."""

    def __init__(self, layers: list[Any] | None = None, name: str | None = None):
        self.name = name or "sequential"
        self._layers: list[Layer] = []
        self.net: Net | None = None  # the torch network, built when first needed
        self._compiled: Compiled | None = None
        self._training: Any = None  # train.Training, kept between fit() calls
        self.history: History | None = None
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------ building
    def add(self, layer: Any) -> None:
        """Append a layer (or `keras.Input` first); a stack that cannot be built is an
        ArchitectureError naming the layer and the reason, at once."""
        if isinstance(layer, Input):
            if self._layers:
                raise ArchitectureError("Input(...) must come before the first layer")
            return  # the input is always MNIST's 28x28x1 (checked by Input)
        if not isinstance(layer, Layer):
            raise ArchitectureError(f"{layer!r} is not a layer mnist-cnn supports (Conv2D, "
                                    "MaxPooling2D, AveragePooling2D, Flatten, Dense, Dropout, "
                                    "BatchNormalization)")
        if layer._model is not None:
            raise ArchitectureError(f"{layer!r} already belongs to a model")
        if layer.input_shape is not None and self._layers:
            raise ArchitectureError("input_shape= belongs on the first layer only")
        self._layers.append(layer)
        try:
            self.architecture()
        except ArchitectureError:
            self._layers.pop()
            raise
        layer._model, layer._index = self, len(self._layers) - 1
        if self.net is not None:  # keep the weights of the layers already built
            old = self.net.state_dict()
            self.net = None
            self._built().load_state_dict(old, strict=False)
            self._training = None

    def architecture(self) -> Architecture:
        """The stack as mnist-cnn's Architecture (validated)."""
        return Architecture(self.name, tuple(layer.spec for layer in self._layers)).validate()

    def _built(self) -> Net:
        if self.net is None:
            self.net = Net(self.architecture()).to(keras_data.device())
            self.net = self.net.to(memory_format=torch.channels_last)
        return self.net

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return (None, 28, 28, 1)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        return (None, *self.architecture().shapes()[-1])

    def count_params(self) -> int:
        return self.architecture().param_count()

    def summary(self, print_fn: Any = None, **_: Any) -> None:
        """Print the Keras summary table (the lesson's layout)."""
        from mnist_cnn.summary import render_keras, summarize

        text = render_keras(summarize(self.architecture(), self.name)).rstrip("\n")
        for line in text.split("\n") if print_fn else [text]:
            (print_fn or print)(line)

    # ------------------------------------------------------------ weights
    def _layer_weights(self, index: int) -> list[np.ndarray]:
        if not has_weights(self._layers[index].spec):
            return []
        net, name = self._built(), self.architecture().keras_names()[index]
        params = {k.rsplit(".", 1)[1]: v.detach().cpu().numpy().copy()
                  for k, v in net.state_dict().items() if k.startswith(f"layers.{name}.")}
        return self._layers[index].spec.torch_to_keras(params)

    def _set_layer_weights(self, index: int, weights: list[np.ndarray]) -> None:
        current = self._layer_weights(index)
        if len(weights) != len(current) or any(
                np.shape(w) != c.shape for w, c in zip(weights, current, strict=False)):
            raise ArchitectureError(f"{self._layers[index].name}: expected weights of shapes "
                                    f"{[c.shape for c in current]}")
        name = self.architecture().keras_names()[index]
        arrays = [np.asarray(w, dtype=np.float32) for w in weights]
        state = {f"layers.{name}.{k}": torch.from_numpy(np.ascontiguousarray(v))
                 for k, v in self._layers[index].spec.keras_to_torch(arrays).items()}
        self._built().load_state_dict(state, strict=False)

    def get_weights(self) -> list[np.ndarray]:
        return [w for i in range(len(self._layers)) for w in self._layer_weights(i)]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        weights = list(weights)
        for i in range(len(self._layers)):
            count = len(self._layer_weights(i))
            self._set_layer_weights(i, weights[:count])
            weights = weights[count:]

    # ------------------------------------------------------------ training
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                **unsupported: Any) -> None:
        """Keras' compile: an optimiser by name ('adam', 'sgd', 'rmsprop') or object, the
        loss ('sparse_categorical_crossentropy' or 'categorical_crossentropy'), metrics."""
        self._compiled = compile_settings(self.architecture(), optimizer, loss, metrics,
                                          unsupported)
        self._training = None  # a new optimiser, as in Keras

    def _ready(self) -> Compiled:
        if self._compiled is None:
            raise UsageError("compile the model first: model.compile(optimizer='adam', "
                             "loss='sparse_categorical_crossentropy', metrics=['accuracy'])")
        self._built()
        return self._compiled

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", validation_split: float = 0.0, validation_data: Any = None,
            shuffle: bool = True, **unsupported: Any) -> History:
        """Train for `epochs` passes (Keras' defaults: batch 32, shuffled each epoch)."""
        from mnist_cnn.keras.fitting import fit

        rows, params = fit(self, self._ready(), x, y, batch_size, epochs, verbose,
                           validation_split, validation_data, shuffle, unsupported)
        self.history = History(rows, params, self)
        return self.history

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: Any = "auto", return_dict: bool = False, **unsupported: Any) -> Any:
        """[loss, accuracy] on (x, y) (the loss alone without metrics), as Keras returns."""
        from mnist_cnn.keras.fitting import evaluate

        return evaluate(self, self._ready(), x, y, batch_size, verbose, return_dict, unsupported)

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto",
                **unsupported: Any) -> np.ndarray:
        """The last layer's output for each image: probabilities after a softmax."""
        from mnist_cnn.keras.fitting import predict

        return predict(self, x, batch_size, verbose, unsupported)

    # ------------------------------------------------------------ files
    def save(self, filepath: str | Path, overwrite: bool = True) -> None:
        """A run directory (every mnist-cnn command reads it), or a Keras 3 `.keras` file."""
        path = Path(filepath)
        if path.suffix == ".h5":
            raise UsageError(f"{path}: mnist-cnn writes a run directory or a .keras file; "
                             ".h5 is the legacy format it only reads")
        if path.exists() and not overwrite:
            raise UsageError(f"{path}: exists (overwrite=False)")
        net = self._built()
        if path.suffix == ".keras":
            from mnist_cnn.export_keras import write_keras

            write_keras(net, path)
            return
        from mnist_cnn.checkpoint import RunMeta
        from mnist_cnn.run import PREPROCESSING, versions, write_run

        history = self._training.history if self._training is not None else []
        optimizer = self._compiled.optimizer.to_dict() if self._compiled else None
        meta = RunMeta(architecture=net.arch, recipe="keras-api",
                       hyperparameters={"optimizer": optimizer} if optimizer else {},
                       preprocessing=PREPROCESSING, versions=versions(),
                       metrics={k: v for k, v in (history[-1] if history else {}).items()
                                if k != "epoch"},
                       date=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_run(path, net, meta, history)

    @classmethod
    def _from_net(cls, net: Net, name: str = "sequential") -> Sequential:
        model = cls(name=name)
        for spec in net.arch.layers:
            model.add(from_spec(spec))
        model.net = net.to(keras_data.device()).to(memory_format=torch.channels_last)
        return model


def load_model(filepath: str | Path, **_: Any) -> Sequential:
    """A run directory, or a `.keras` / `.h5` file saved by Keras, as a compiled model."""
    path = Path(filepath)
    if path.is_dir():
        from mnist_cnn.checkpoint import load_model as load_run
        from mnist_cnn.optimizers import OptimizerSpec

        net, meta = load_run(path)
        if meta.members:  # a Sequential is one network
            raise UsageError(f"{path} is an ensemble of {len(meta.members)} networks, not one "
                             "Sequential: load one of its members (its members/ folder), "
                             "or the whole with mnist_cnn.checkpoint.load_model")
        saved = meta.hyperparameters.get("optimizer")
        try:  # the run's own optimiser settings, when it recorded them
            optimizer = OptimizerSpec(**saved) if isinstance(saved, dict) else "adam"
        except (TypeError, UsageError):
            optimizer = "adam"
    else:
        from mnist_cnn.interop import import_keras

        net, optimizer = import_keras(path), "adam"
    model = Sequential._from_net(net)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
