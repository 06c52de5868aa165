"""Dataset files: IDX parsing, the lookup order, and a Keras-style `load_data()`.

The registry and the verified read live in `datasets`; this module finds and parses the
files. Lookup order (DESIGN.md): --data-dir, $MNIST_CNN_DATA, the cache, other tools'
caches, then a download from the dataset's HTTPS mirrors.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np

from mnist_cnn.datasets import (  # noqa: F401 (re-exported: data.DATASETS, ...)
    DATASETS,
    SPLITS,
    DataFile,
    Dataset,
    get_dataset,
    read_verified,
)
from mnist_cnn.errors import DataError

ENV_VAR = "MNIST_CNN_DATA"

# Keras keeps MNIST as one npz; we accept it when its own sha256 matches this value.
KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def cache_dir() -> Path:
    """Where downloads are kept: $XDG_CACHE_HOME/mnist-cnn or ~/.cache/mnist-cnn."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-cnn"


# ---------------------------------------------------------------- IDX parsing

_IDX_DTYPES = {0x08: np.uint8}  # the only element type the MNIST family uses


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, validating magic, dimensions and size.

    Raises DataError naming `source` for anything malformed; never uses assert.
    """
    if len(raw) < 4:
        raise DataError(f"{source}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = raw[0] | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code not in _IDX_DTYPES or not 1 <= ndim <= 3:
        raise DataError(f"{source}: not an IDX file (bad magic number {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)  # Python ints: np.prod could wrap around
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(f"{source}: {what}: dimensions {dims} need {expected} bytes, "
                        f"file has {len(raw)}")
    return np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=header).reshape(dims)


# ---------------------------------------------------------------- lookup

def _candidates(directory: Path, ds: Dataset, spec: DataFile) -> list[Path]:
    names = [spec.name, spec.name + ".gz"]
    # torchvision-style dotted names ("train-images.idx3-ubyte") are common copies too.
    names += [n.replace("-idx", ".idx") for n in names]
    return [d / n for d in (directory / ds.name, directory) for n in names]


def search_dirs(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """The local places searched, in order, each with the reason it is searched."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        places.append(("--data-dir", Path(data_dir)))
    if os.environ.get(ENV_VAR):
        places.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    places.append(("cache", cache_dir()))
    return places


def find_file(ds: Dataset, split: str, data_dir: str | Path | None = None) -> Path | None:
    """The first existing local copy of one file, following the lookup order."""
    spec = ds.files[split]
    dirs = [p for _, p in search_dirs(data_dir)]
    if ds.name == "fashion-mnist":
        dirs.append(DEBIAN_FASHION_DIR)
    for directory in dirs:
        for path in _candidates(directory, ds, spec):
            if path.is_file():
                return path
    return None


def _keras_npz(ds: Dataset) -> Path | None:
    path = Path.home() / ".keras" / "datasets" / "mnist.npz"
    if ds.name != "mnist" or not path.is_file():
        return None
    if hashlib.sha256(path.read_bytes()).hexdigest() != KERAS_MNIST_NPZ_SHA256:
        return None
    return path


def _not_found(ds: Dataset, data_dir: str | Path | None, split: str) -> DataError:
    looked = "; ".join(f"{why}: {p}" for why, p in search_dirs(data_dir))
    return DataError(
        f"{ds.name}: {ds.files[split].name} not found (looked in {looked}) and could not be "
        f"downloaded. Point the tool at local files with --data-dir DIR or {ENV_VAR}=DIR "
        f"(DIR holding {ds.name}/{ds.files[split].name}[.gz] or the files directly).")


def load_split(ds: Dataset, split: str, data_dir: str | Path | None = None,
               download: bool = True, progress=None) -> np.ndarray:
    """One verified split as an array; downloads into the cache if nothing local is found.

    A copy in *our cache* that fails verification is removed and fetched again (the cache
    heals); a bad copy in a folder the user named is reported, never silently replaced.
    `progress(url, done, total)` is called while downloading (see download.Progress).
    """
    spec = ds.files[split]
    while (path := find_file(ds, split, data_dir)) is not None:
        try:
            return parse_idx(read_verified(path, spec), str(path))
        except DataError as exc:
            if not path.absolute().is_relative_to(cache_dir().absolute()):
                raise  # a folder the user named: report the bad file, never replace it
            try:
                path.unlink(missing_ok=True)  # our cache: drop the bad copy, fetch it again
            except OSError:
                raise exc from None
    if not download:
        raise _not_found(ds, data_dir, split)
    from mnist_cnn.download import fetch_file  # network code only when needed

    path = fetch_file(ds, split, cache_dir(), progress=progress)
    return parse_idx(read_verified(path, spec), str(path))


Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data(name: str = "mnist", data_dir: str | Path | None = None,
              download: bool = True) -> Arrays:
    """Keras-style `((x_train, y_train), (x_test, y_test))` as uint8 arrays.

    Shapes: (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).
    """
    ds = get_dataset(name)
    if find_file(ds, "train-images", data_dir) is None:
        npz = _keras_npz(ds)
        if npz is not None:
            with np.load(npz, allow_pickle=False) as z:
                return (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])
    arrays = {s: load_split(ds, s, data_dir, download) for s in SPLITS}
    for part in ("train", "t10k"):
        images, labels = arrays[f"{part}-images"], arrays[f"{part}-labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{ds.name}: {part} images {images.shape} and labels "
                            f"{labels.shape} do not match")
    return ((arrays["train-images"], arrays["train-labels"]),
            (arrays["t10k-images"], arrays["t10k-labels"]))
