"""Datasets: registry, IDX parsing, the lookup order, and a Keras-style `load_data()`.

Every file is verified against the pinned sha256 of its *uncompressed* bytes, so any
faithful copy (gzip or raw, ours or another tool's) is accepted and a corrupt one never is.
Lookup order (DESIGN.md): --data-dir, $MNIST_CNN_DATA, the cache, other tools' caches,
then a download from the dataset's HTTPS mirrors.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.errors import DataError, UsageError

ENV_VAR = "MNIST_CNN_DATA"
SPLITS = ("train-images", "train-labels", "t10k-images", "t10k-labels")


@dataclass(frozen=True)
class DataFile:
    """One IDX file: its canonical name, uncompressed size and sha256."""

    name: str  # e.g. "train-images-idx3-ubyte"
    size: int  # bytes, uncompressed
    sha256: str  # of the uncompressed bytes


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: four IDX files, class names and the mirrors serving them."""

    name: str
    files: dict[str, DataFile]  # keyed by SPLITS
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]  # HTTPS base URLs; the file name + ".gz" is appended


def _files(digests: dict[str, str]) -> dict[str, DataFile]:
    sizes = {"train-images": 47040016, "train-labels": 60008,
             "t10k-images": 7840016, "t10k-labels": 10008}
    kinds = {"images": "idx3", "labels": "idx1"}
    return {split: DataFile(f"{split}-{kinds[split.split('-')[1]]}-ubyte", sizes[split], sha)
            for split, sha in digests.items()}


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        files=_files({
            "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }),
        classes=tuple(str(d) for d in range(10)),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": Dataset(
        name="fashion-mnist",
        files=_files({
            "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        # The project's own S3 website serves plain HTTP only, so it is not listed.
        mirrors=(
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
    ),
}

# Keras keeps MNIST as one npz; we accept it when its own sha256 matches this value.
KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def get_dataset(name: str) -> Dataset:
    """The registered dataset `name`, or a UsageError listing the valid names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")\
            from None


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


def read_verified(path: Path, spec: DataFile) -> bytes:
    """Read `path` (.gz or raw), bounded by the expected size, and check its sha256."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read(spec.size + 1)  # bounded: a gzip bomb cannot fill memory
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) != spec.size:
        raise DataError(f"{path}: {len(raw)} bytes uncompressed, expected {spec.size} "
                        "(truncated or not the right file)")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise DataError(f"{path}: sha256 {digest[:12]}... does not match the pinned digest "
                        f"{spec.sha256[:12]}... (corrupt or a different file)")
    return raw


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
