"""Hostile Keras model files, made from the real Keras fixtures by one small edit each.

The fixtures are about 1 MB each, so the hostile files are made here (in a few ms each)
rather than kept in tests/corpus/. Each edit is what an attacker (or a broken exporter)
could put in a file: a layer with one weight instead of two, a weight of bytes, a config
that is a list, a NaN, and a 30000x30000 gzip'd fill-value dataset (1 MB on disk, 3.6 GB
if anything ever read it).
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "keras"
SOURCE = {".h5": FIXTURES / "fixture_seed.h5", ".keras": FIXTURES / "fixture_seed.keras"}
# Where the first conv layer's kernel and bias live in each layout.
CONV = {".h5": ("model_weights/conv2d/sequential/conv2d", "kernel", "bias"),
        ".keras": ("layers/conv2d/vars", "0", "1")}


def _huge(h5, suffix: str) -> None:
    group, kernel, _ = CONV[suffix]
    del h5[group][kernel]
    h5[group].create_dataset(kernel, shape=(30000, 30000), dtype="f4", chunks=(1000, 1000),
                             compression="gzip", fillvalue=1.0)


def _one_weight(h5, suffix: str) -> None:
    group, kernel, bias = CONV[suffix]
    if suffix == ".h5":
        h5["model_weights/conv2d"].attrs["weight_names"] = [f"sequential/conv2d/{kernel}"
                                                             .encode()]
    else:
        del h5[group][bias]


def _bytes_weight(h5, suffix: str) -> None:
    group, _, bias = CONV[suffix]
    del h5[group][bias]
    h5[group].create_dataset(bias, data=np.array([b"abc"] * 32))


def _nan_weight(h5, suffix: str) -> None:
    group, _, bias = CONV[suffix]
    values = h5[group][bias][()]
    values[0] = np.nan
    h5[group][bias][...] = values


WEIGHT_EDITS: dict[str, Callable] = {"huge-fill-value": _huge, "one-weight": _one_weight,
                                     "bytes-weight": _bytes_weight, "nan-weight": _nan_weight}


def make(name: str, suffix: str, folder: Path) -> Path:
    """The hostile file `name` ('config-is-a-list' or a WEIGHT_EDITS key) as .h5 or .keras."""
    import h5py

    path = folder / f"{name}{suffix}"
    if suffix == ".h5":
        shutil.copyfile(SOURCE[suffix], path)
        with h5py.File(path, "r+") as h5:
            if name == "config-is-a-list":
                h5.attrs["model_config"] = json.dumps([1, 2, 3])
            else:
                WEIGHT_EDITS[name](h5, suffix)
        return path
    with zipfile.ZipFile(SOURCE[suffix]) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    if name == "config-is-a-list":
        members["config.json"] = b"[1, 2, 3]"
    else:
        buf = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buf, "r+") as h5:
            WEIGHT_EDITS[name](h5, suffix)
        members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for member, raw in members.items():
            out.writestr(member, raw)
    return path


NAMES = ("config-is-a-list", *WEIGHT_EDITS)
