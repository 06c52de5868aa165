"""Import a model trained by Keras (the lesson's program, or any Sequential of the lesson's
layers) into a run directory.

Reads a `.keras` archive (config.json + model.weights.h5) or a legacy `.h5` file with h5py
(the optional `keras` extra), maps each layer's config onto our specs and each layer's
weights onto our tensors (layers.py knows each layer's layout). Only data is read: no Keras
code is imported, and every array's declared shape is checked against the architecture
before a byte of it is read, so a crafted file cannot make us allocate at will.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_cnn.errors import ArchitectureError, MnistCnnError, ModelFileError
from mnist_cnn.files import read_bounded
from mnist_cnn.layers import LAYER_TYPES, has_weights
from mnist_cnn.model import ARCHITECTURES, INPUT_SHAPE, Architecture, Net

MAX_MEMBER_BYTES = 64 << 20  # a .keras member larger than this is not a model we can hold
MAX_FILE_BYTES = 2 * MAX_MEMBER_BYTES + (1 << 20)  # both members, with the archive's overhead
# Keras config keys we read, by layer type; anything else must hold Keras' default.
_SETTINGS = {"Conv2D": ("filters", "kernel_size", "strides", "padding", "activation",
                        "use_bias"),
             "MaxPooling2D": ("pool_size", "strides", "padding"),
             "AveragePooling2D": ("pool_size", "strides", "padding"),
             "Flatten": (), "Dense": ("units", "activation", "use_bias"), "Dropout": ("rate",),
             "BatchNormalization": ("momentum", "epsilon")}
_DEFAULTS = {"data_format": ("channels_last", None), "dilation_rate": ([1, 1], 1, None),
             "groups": (1, None), "noise_shape": (None,), "axis": (-1, 3, [-1], [3]),
             "center": (True,), "scale": (True,), "renorm": (False, None),
             "synchronized": (False, None)}


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ModelFileError("reading Keras files needs h5py: pip install 'mnist-cnn[keras]'")\
            from None
    return h5py


def _layer(position: int, entry: Any) -> dict[str, Any] | None:
    """One Keras layer config -> our layer description (None for the InputLayer)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise ArchitectureError(f"layer {position}: not a Keras layer config")
    kind, cfg = entry.get("class_name"), entry.get("config", {})
    name = cfg.get("name", "?")
    if kind == "InputLayer":
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape is not None and (not isinstance(shape, (list, tuple))
                                  or list(shape)[1:] not in ([28, 28, 1], [28, 28])):
            raise ArchitectureError(f"input shape {shape!r}: mnist-cnn reads 28x28x1 images")
        return None
    if not isinstance(kind, str) or kind not in _SETTINGS:  # a list here is a bad file too
        raise ArchitectureError(f"layer {position} ({name!r}) is a {kind}, which mnist-cnn "
                                f"does not support; supported: {', '.join(LAYER_TYPES)}")
    for key, allowed in _DEFAULTS.items():
        if key in cfg and cfg[key] not in allowed:
            raise ArchitectureError(f"layer {position} ({name!r}, {kind}): {key}="
                                    f"{cfg[key]!r} is not supported")
    out = {"type": kind}
    for key in _SETTINGS[kind]:
        if key in cfg:
            value = cfg[key]
            if key == "activation" and isinstance(value, dict):  # a serialised function
                value = value.get("config")
            out[key] = value
    return out


def architecture_from_keras(config: Any) -> Architecture:
    """The Keras Sequential config as our architecture (unsupported layers named)."""
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        raise ModelFileError("only Keras Sequential models can be imported")
    inner = config.get("config")
    layers_cfg = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers_cfg, list):
        raise ModelFileError("the Keras config has no layer list")
    layers = [d for i, e in enumerate(layers_cfg) if (d := _layer(i, e)) is not None]
    first = layers_cfg[0].get("config", {}) if layers_cfg else {}
    shape = first.get("batch_input_shape")  # Keras 2 kept the input shape on the first layer
    if shape is not None and list(shape)[1:] not in ([28, 28, 1], [28, 28]):
        raise ArchitectureError(f"input shape {shape[1:]}: mnist-cnn reads 28x28x1 images")
    arch = Architecture.from_dict({"name": "keras", "input_shape": list(INPUT_SHAPE),
                                   "layers": layers})
    for known in ARCHITECTURES.values():  # the lesson's network keeps the lesson's name
        if known.layers == arch.layers:
            return known
    return arch


def _keras_layer_names(config: dict[str, Any]) -> list[str]:
    """The Keras names of the non-input layers, in order (where their weights are kept)."""
    return [e["config"]["name"] for e in config["config"]["layers"]
            if e.get("class_name") != "InputLayer"]


def _read(dataset: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    """One h5 dataset, read only if its declared shape and type are the expected ones."""
    h5py = _h5py()
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{where}: not an array")
    if tuple(dataset.shape) != shape or dataset.dtype.kind != "f":
        raise ModelFileError(f"{where}: holds {dataset.dtype} {tuple(dataset.shape)}, expected "
                             f"floats {shape}")
    return np.asarray(dataset[()], dtype=np.float32)


def _weights_from_h5(groups: dict[str, list[Any]], model: Net, keras_names: list[str],
                     path: Path) -> dict[str, torch.Tensor]:
    """Our state dict from each layer's list of h5 datasets (Keras' order)."""
    state: dict[str, torch.Tensor] = {}
    expected = model.state_dict()
    for ours, theirs, layer in zip(model.names, keras_names, model.arch.layers, strict=True):
        if not has_weights(layer):
            continue
        datasets = groups.get(theirs, [])
        wanted = layer.torch_to_keras({k.rsplit(".", 1)[1]: v.numpy()
                                       for k, v in expected.items()
                                       if k.startswith(f"layers.{ours}.")})
        if len(datasets) != len(wanted):
            raise ModelFileError(f"{path}: layer {theirs!r} holds {len(datasets)} weights, "
                                 f"expected {len(wanted)}")
        arrays = [_read(d, w.shape, f"{path}: {theirs} weight {i}")
                  for i, (d, w) in enumerate(zip(datasets, wanted, strict=True))]
        for key, value in layer.keras_to_torch(arrays).items():
            state[f"layers.{ours}.{key}"] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def _open_keras_archive(path: Path, raw: bytes, h5py: Any) -> tuple[dict[str, Any], Any]:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for name in ("config.json", "model.weights.h5"):
            if archive.getinfo(name).file_size > MAX_MEMBER_BYTES:
                raise ModelFileError(f"{path}: {name} is implausibly large")
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    return config, h5py.File(io.BytesIO(weights), "r")


def _groups(h5: Any, legacy: bool) -> dict[str, list[Any]]:
    """Layer name -> its datasets in Keras' order, for both file layouts."""
    if not legacy:
        layers = h5["layers"]
        return {name: [group["vars"][str(i)] for i in range(len(group["vars"]))]
                for name, group in layers.items()}
    weights = h5["model_weights"]
    out = {}
    for name in weights.attrs["layer_names"]:
        name = name.decode() if isinstance(name, bytes) else str(name)
        group = weights[name]
        out[name] = [group[w.decode() if isinstance(w, bytes) else str(w)]
                     for w in group.attrs.get("weight_names", [])]
    return out


def import_keras(path: str | Path) -> Net:
    """Build our network from a Keras `.keras` or `.h5` file, with its trained weights."""
    from mnist_cnn.checkpoint import check_weights

    path = Path(path)
    h5py = _h5py()
    # Read once, bounded, from a regular file: zipfile and HDF5 then work on the bytes.
    raw = read_bounded(path, MAX_FILE_BYTES, ModelFileError, "Keras model file")
    try:
        legacy = not zipfile.is_zipfile(io.BytesIO(raw))
        if legacy:
            h5 = h5py.File(io.BytesIO(raw), "r")
            config = json.loads(h5.attrs["model_config"])
        else:
            config, h5 = _open_keras_archive(path, raw, h5py)
        with h5:
            arch = architecture_from_keras(config).check_classifier()
            model = Net(arch)
            state = _weights_from_h5(_groups(h5, legacy), model, _keras_layer_names(config),
                                     path)
    except MnistCnnError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ModelFileError(f"{path}: {exc}") from None
    except (OSError, KeyError, ValueError, TypeError, AttributeError, IndexError,
            zipfile.BadZipFile, RecursionError) as exc:
        raise ModelFileError(f"{path}: not a readable Keras model ({str(exc)[:200]})") from None
    check_weights(state, model, path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def import_keras_run(path: str | Path, run_dir: Path, data_dir: str | Path | None = None,
                     overwrite: bool = False):
    """`mnist-cnn import-keras`: import, evaluate on the MNIST test set, write a run as one
    unit (a non-empty `run_dir` only with `overwrite`). Returns the model and its test
    metrics."""
    import time

    from mnist_cnn import data
    from mnist_cnn.checkpoint import RunMeta
    from mnist_cnn.evaluate import evaluate
    from mnist_cnn.run import PREPROCESSING, open_run, versions, write_run_files

    with open_run(Path(run_dir), overwrite, what="importing") as target:  # checked first
        model = import_keras(path)
        x_test, y_test = data.load_test("mnist", data_dir)
        test = evaluate(model, x_test, y_test)
        found = data.found_in(data.get_dataset("mnist"), data.TEST_SPLITS, data_dir)
        meta = RunMeta(architecture=model.arch, dataset="mnist", recipe="keras",
                       preprocessing=PREPROCESSING, source={"keras_file": str(path)},
                       metrics={"test_loss": test.loss, "test_accuracy": test.accuracy},
                       versions=versions(), date=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       data_dir=None if found is None else str(found))
        write_run_files(target.staging, model, meta)
        target.folder.commit()
    return model, test
