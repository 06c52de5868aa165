"""Write a network as a Keras 3 `.keras` file, with no Keras code: json, zipfile and h5py.

The archive holds what Keras' own `model.save("x.keras")` writes:

    metadata.json      {"keras_version": ..., "date_saved": ...}
    config.json        the Sequential's config: an InputLayer, then one entry per layer
    model.weights.h5   vars/ (the model's own, empty) and layers/<name>/vars/<i>, each
                       layer's weights in Keras' order and layout (layers.py converts them)

Keras finds a layer's weights by the snake-cased class name with a counter per class
(conv2d, conv2d_1, max_pooling2d, ...), which is exactly how `Architecture.keras_names`
names them. Each config entry lists only the settings every Keras 3 release accepts, so
Keras fills in its own defaults (initialisers, regularisers) on load; the file holds no
code and loads with `keras.models.load_model(path)` in its default safe mode. It is not
compiled: call `compile` before `fit` or `evaluate` (`predict` needs nothing).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import __version__
from mnist_cnn.errors import ModelFileError
from mnist_cnn.files import atomic_write
from mnist_cnn.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPooling2D,
    Shape,
    has_weights,
)
from mnist_cnn.model import Net

# The Keras release whose file layout this writer follows (the fixtures' version); Keras
# does not read it back, it only tells a person which layout to expect.
KERAS_FORMAT_VERSION = "3.15.1"
DTYPE = "float32"


def _settings(layer: Layer) -> dict[str, Any]:
    """The Keras config keys that define `layer` (besides name, trainable and dtype)."""
    if isinstance(layer, Conv2D):
        return {"filters": layer.filters, "kernel_size": list(layer.kernel_size),
                "strides": list(layer.strides), "padding": layer.padding,
                "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
                "activation": layer.activation or "linear", "use_bias": layer.use_bias}
    if isinstance(layer, (MaxPooling2D, AveragePooling2D)):
        return {"pool_size": list(layer.pool_size), "padding": layer.padding,
                "strides": list(layer.strides), "data_format": "channels_last"}
    if isinstance(layer, Flatten):
        return {"data_format": "channels_last"}
    if isinstance(layer, Dense):
        return {"units": layer.units, "activation": layer.activation or "linear",
                "use_bias": layer.use_bias}
    if isinstance(layer, Dropout):
        return {"rate": layer.rate, "seed": None, "noise_shape": None}
    if isinstance(layer, BatchNormalization):
        return {"axis": -1, "momentum": layer.momentum, "epsilon": layer.epsilon,
                "center": True, "scale": True}
    raise ModelFileError(f"no Keras form for {type(layer).__name__}")


def _batch(shape: Shape) -> list[int | None]:
    return [None, *shape]


def keras_config(net: Net, model_name: str = "sequential") -> dict[str, Any]:
    """config.json: the Sequential as Keras serialises it (input layer first)."""
    arch = net.arch
    entries: list[dict[str, Any]] = [{
        "module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
        "config": {"batch_shape": _batch(arch.input_shape), "dtype": DTYPE, "sparse": False,
                   "name": "input_layer"}}]
    inputs = [arch.input_shape, *arch.shapes()]
    for name, layer, shape in zip(arch.keras_names(), arch.layers, inputs, strict=False):
        entry = {"module": "keras.layers", "class_name": type(layer).__name__,
                 "registered_name": None,
                 "config": {"name": name, "trainable": True, "dtype": DTYPE,
                            **_settings(layer)}}
        # Keras records the input shape of the layers that have a build step (weights, or
        # Flatten's), not of pooling or Dropout.
        if not isinstance(layer, (MaxPooling2D, AveragePooling2D, Dropout)):
            entry["build_config"] = {"input_shape": _batch(shape)}
        entries.append(entry)
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": model_name, "trainable": True, "dtype": DTYPE,
                       "layers": entries, "build_input_shape": _batch(arch.input_shape)},
            "build_config": {"input_shape": _batch(arch.input_shape)}}


def keras_weights(net: Net) -> dict[str, list[np.ndarray]]:
    """Each layer's weights in Keras' order and layout (float32), keyed by Keras name;
    weightless layers map to []."""
    state = {k: v.detach().to("cpu").float().contiguous().numpy()
             for k, v in net.state_dict().items()}
    out: dict[str, list[np.ndarray]] = {}
    for name, layer in zip(net.names, net.arch.layers, strict=True):
        if not has_weights(layer):
            out[name] = []
            continue
        params = {k.rsplit(".", 1)[1]: v for k, v in state.items()
                  if k.startswith(f"layers.{name}.")}
        out[name] = [np.ascontiguousarray(a, dtype=np.float32)
                     for a in layer.torch_to_keras(params)]
    return out


def _weights_h5(net: Net, model_name: str) -> bytes:
    """model.weights.h5 in Keras 3's layout, as bytes."""
    try:
        import h5py
    except ImportError:
        raise ModelFileError("writing Keras files needs h5py: pip install 'mnist-cnn[keras]'")\
            from None
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_group("vars").attrs["name"] = model_name
        layers = h5.create_group("layers")
        for name, arrays in keras_weights(net).items():
            group = layers.create_group(name).create_group("vars")
            group.attrs["name"] = name
            for i, array in enumerate(arrays):
                group.create_dataset(str(i), data=array)
    return buffer.getvalue()


def keras_bytes(net: Net, model_name: str = "sequential") -> bytes:
    """The whole `.keras` archive, as bytes."""
    metadata = {"keras_version": KERAS_FORMAT_VERSION,
                "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
                "saved_by": f"mnist-cnn {__version__}"}
    weights = _weights_h5(net, model_name)
    buffer = io.BytesIO()
    # Stored, not deflated, as Keras writes it.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(keras_config(net, model_name)))
        archive.writestr("model.weights.h5", weights)
    return buffer.getvalue()


def write_keras(net: Net, path: Path) -> None:
    """Write `net` to `path` as a Keras 3 `.keras` file, atomically."""
    data = keras_bytes(net)
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))
