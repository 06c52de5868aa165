"""Import a model trained by Keras (the lesson's own program) into a run directory.

Reads a `.keras` archive (config.json + model.weights.h5) or a legacy `.h5` file with h5py
(the optional `keras` extra) and maps each layer onto our specs: kernels HWIO -> OIHW,
Dense kernels (in, out) -> (out, in). Our Flatten already uses Keras' channels-last order,
so the Dense weights carry over unchanged. Only data is read: no Keras code is imported.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_cnn.errors import ModelFileError
from mnist_cnn.model import ARCHITECTURES, INPUT_SHAPE, Architecture, Net

MAX_MEMBER_BYTES = 64 << 20  # a .keras member larger than this is not a lesson-sized model


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ModelFileError("reading Keras files needs h5py: pip install 'mnist-cnn[keras]'")\
            from None
    return h5py


def _layer(entry: dict[str, Any]) -> dict[str, Any] | None:
    """One Keras layer config -> our layer description (None for the InputLayer)."""
    kind, cfg = entry.get("class_name"), entry.get("config", {})
    if kind == "InputLayer":
        return None
    if kind == "Conv2D":
        k = cfg["kernel_size"]
        if (k[0] != k[1] or cfg.get("strides", [1, 1]) != [1, 1]
                or cfg.get("padding") != "valid"):
            raise ModelFileError(f"unsupported Conv2D settings in {cfg.get('name')}")
        return {"type": kind, "filters": cfg["filters"], "kernel_size": k[0],
                "activation": _activation(cfg)}
    if kind == "MaxPooling2D":
        pool = cfg["pool_size"]
        if pool[0] != pool[1] or cfg.get("strides", pool) != pool:
            raise ModelFileError(f"unsupported MaxPooling2D settings in {cfg.get('name')}")
        return {"type": kind, "pool_size": pool[0]}
    if kind == "Flatten":
        return {"type": kind}
    if kind == "Dense":
        return {"type": kind, "units": cfg["units"], "activation": _activation(cfg)}
    raise ModelFileError(f"unsupported Keras layer {kind!r}")


def _activation(cfg: dict[str, Any]) -> str | None:
    return None if cfg.get("activation") in (None, "linear") else cfg["activation"]


def _architecture(config: dict[str, Any]) -> Architecture:
    """The Keras Sequential config as one of our named architectures."""
    layers_cfg = config.get("config", {}).get("layers")
    if config.get("class_name") != "Sequential" or not isinstance(layers_cfg, list):
        raise ModelFileError("only Keras Sequential models can be imported")
    try:
        layers = [d for d in map(_layer, layers_cfg) if d is not None]
        arch = Architecture.from_dict({"name": "keras", "input_shape": list(INPUT_SHAPE),
                                       "layers": layers})
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ModelFileError(f"unreadable Keras layer config ({exc!r})") from None
    for known in ARCHITECTURES.values():
        if known.layers == arch.layers:
            return known
    raise ModelFileError("the Keras model is not one of the lesson's architectures "
                         f"({', '.join(ARCHITECTURES)})")


def _read_keras_archive(path: Path) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    try:
        with zipfile.ZipFile(path) as archive:
            for name in ("config.json", "model.weights.h5"):
                if archive.getinfo(name).file_size > MAX_MEMBER_BYTES:
                    raise ModelFileError(f"{path}: {name} is implausibly large")
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not a readable .keras archive ({exc})") from None
    with _h5py().File(io.BytesIO(weights), "r") as h5:
        tensors = {name: [np.asarray(group["vars"][str(i)]) for i in range(len(group["vars"]))]
                   for name, group in h5["layers"].items()}
    return config, tensors


def _read_legacy_h5(path: Path) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    with _h5py().File(path, "r") as h5:
        config = json.loads(h5.attrs["model_config"])
        weights = h5["model_weights"]
        tensors = {}
        for name in weights.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else str(name)
            group = weights[name]
            tensors[name] = [np.asarray(group[w.decode() if isinstance(w, bytes) else w])
                             for w in group.attrs["weight_names"]]
    return config, tensors


def import_keras(path: str | Path) -> Net:
    """Build our network from a Keras `.keras` or `.h5` file, with its trained weights."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        reader = _read_keras_archive if zipfile.is_zipfile(path) else _read_legacy_h5
        config, tensors = reader(path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: not a readable Keras model ({exc})") from None
    model = Net(_architecture(config))
    state = {}
    for name, module in model.layers.items():
        if not hasattr(module, "weight"):
            continue
        kernel, bias = (tensors.get(name) or [None, None])[:2]
        if kernel is None:
            raise ModelFileError(f"{path}: no weights for layer {name}")
        # Conv kernels: (kh, kw, in, out) -> (out, in, kh, kw); Dense: (in, out) -> (out, in).
        kernel = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        state[f"layers.{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        state[f"layers.{name}.bias"] = torch.from_numpy(np.asarray(bias))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit the architecture ({exc})") from None
    return model.eval()
