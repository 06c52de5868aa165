"""Dataset files: IDX parsing, the lookup order, and a Keras-style `load_data()`.

The registry and the verified read live in `datasets`; this module finds and parses the
files. Lookup order (DESIGN.md): --data-dir (alone: a folder named explicitly must hold the
files), else $MNIST_CNN_DATA, the folder a run recorded, the cache, other tools' copies, then
a download from the dataset's HTTPS mirrors.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
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
from mnist_cnn.errors import DataError, DownloadError
from mnist_cnn.files import problem, read_bounded, reason

ENV_VAR = "MNIST_CNN_DATA"

# Keras keeps MNIST as one npz; we accept it when its own sha256 matches this value.
KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KERAS_MNIST_NPZ_MAX_BYTES = 32 << 20
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


def search_dirs(data_dir: str | Path | None = None,
                recorded: str | Path | None = None) -> list[tuple[str, Path]]:
    """The local places searched, in order, each with the reason it is searched. A folder
    named with --data-dir is the only one: it must hold the files."""
    if data_dir is not None:
        return [("--data-dir", Path(data_dir))]
    places: list[tuple[str, Path]] = []
    if os.environ.get(ENV_VAR):
        places.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    if recorded:
        places.append(("the run's data folder", Path(recorded)))
    places.append(("cache", cache_dir()))
    return places


def check_data_dir(data_dir: str | Path | None) -> None:
    """An explicit --data-dir must be an existing folder: a mistyped one is an error, never
    a silent fall-back to other places."""
    if data_dir is None:
        return
    path = Path(data_dir)
    try:
        ok, exists = path.is_dir(), path.exists()
    except OSError as exc:
        raise DataError(f"--data-dir {path}: cannot be read ({reason(exc)})") from None
    if not ok:
        raise DataError(f"--data-dir {path}: " + ("is not a folder" if exists
                                                  else "no such folder"))


def find_file(ds: Dataset, split: str, data_dir: str | Path | None = None,
              recorded: str | Path | None = None) -> Path | None:
    """The first local copy of one file, following the lookup order.

    A candidate name that exists but is not a regular file (a broken link, a folder, a
    FIFO, a loop of links) is a DataError naming it, never skipped in silence.
    """
    spec = ds.files[split]
    dirs = [p for _, p in search_dirs(data_dir, recorded)]
    if data_dir is None and ds.name == "fashion-mnist":
        dirs.append(DEBIAN_FASHION_DIR)
    for directory in dirs:
        for path in _candidates(directory, ds, spec):
            found = problem(path)
            if found is None:
                return path
            if found != "missing":
                raise DataError(f"{path}: {found}, not the data file {spec.name}; remove it "
                                "or put the real file there")
    return None


def found_in(ds: Dataset, splits: tuple[str, ...], data_dir: str | Path | None = None,
             recorded: str | Path | None = None) -> Path | None:
    """The folder (--data-dir, $MNIST_CNN_DATA or a run's data folder, as an absolute path)
    that holds all of `splits`, or None when they came from the cache or elsewhere."""
    paths = {find_file(ds, split, data_dir, recorded) for split in splits}
    for why, place in search_dirs(data_dir, recorded):
        if why != "cache" and all(p is not None and p.parent in (place, place / ds.name)
                                  for p in paths):
            return place.absolute()
    return None


@dataclass(frozen=True)
class FileCheck:
    """One of a dataset's files: where it was found, and why it failed verification."""

    name: str  # the IDX file's name
    path: Path | None  # where it was found (None: nowhere)
    problem: str | None = None  # why it failed verification (None: it passed, or was not read)

    @property
    def ok(self) -> bool:
        return self.path is not None and self.problem is None


def check_files(ds: Dataset, data_dir: str | Path | None = None,
                verify: bool = True) -> list[FileCheck]:
    """Each of `ds`'s four files, found as training would find them (no download) and, with
    `verify`, read and checked against its pinned size and sha256."""
    checks = []
    for split in SPLITS:
        spec, path, failed = ds.files[split], find_file(ds, split, data_dir), None
        if path is not None and verify:
            try:
                read_verified(path, spec)
            except DataError as exc:
                failed = str(exc)
        checks.append(FileCheck(spec.name, path, failed))
    return checks


def _keras_npz(ds: Dataset) -> Path | None:
    path = Path.home() / ".keras" / "datasets" / "mnist.npz"
    if ds.name != "mnist" or problem(path) is not None:
        return None
    try:  # Keras' copy is 11.5 MB; read bounded, as every file we are handed
        raw = read_bounded(path, KERAS_MNIST_NPZ_MAX_BYTES, DataError, "Keras data file")
    except DataError:
        return None
    if hashlib.sha256(raw).hexdigest() != KERAS_MNIST_NPZ_SHA256:
        return None
    return path


def _not_found(ds: Dataset, missing: list[str], data_dir: str | Path | None,
               recorded: str | Path | None = None, failure: str | None = None) -> DataError:
    """Every missing file, where they were searched, and the ways to provide them."""
    names = ", ".join(ds.files[s].name for s in missing)
    if data_dir is not None:
        return DataError(f"--data-dir {data_dir} does not hold {ds.name}'s {names} (looked "
                         f"for {Path(data_dir) / ds.name}/<file> and {data_dir}/<file>, .gz "
                         "or raw)")
    looked = "; ".join(f"{why}: {p}" for why, p in search_dirs(None, recorded))
    tried = f"; downloading failed: {failure}" if failure else ""
    return DataError(
        f"{ds.name}: {len(missing)} data file{'s' if len(missing) > 1 else ''} not found: "
        f"{names} (searched {looked}{tried}). Provide them with {ENV_VAR}=DIR or "
        f"--data-dir DIR (DIR holding {ds.name}/<file> or the files directly, .gz or raw), "
        f"or download them with `mnist-cnn data fetch`; `mnist-cnn data where` shows where "
        "they are searched.")


def _ours_to_heal(path: Path) -> bool:
    """Whether `path` lies in our cache's own real folder: no symbolic link on the way (a
    cache folder linked to a user's data folder is not ours to clean)."""
    cache = cache_dir().absolute()
    try:
        parts = path.absolute().relative_to(cache).parts
    except ValueError:
        return False
    steps = [cache] + [cache.joinpath(*parts[:i + 1]) for i in range(len(parts))]
    return not any(step.is_symlink() for step in steps) and Path(
        os.path.realpath(path)).is_relative_to(os.path.realpath(cache))


def _load_local(ds: Dataset, split: str, data_dir: str | Path | None,
                recorded: str | Path | None) -> np.ndarray | None:
    """One verified split from a local copy, or None when there is none.

    A copy in *our cache* that fails verification is removed so that it is fetched again
    (the cache heals); a bad copy anywhere else is reported, never replaced.
    """
    spec = ds.files[split]
    while (path := find_file(ds, split, data_dir, recorded)) is not None:
        try:
            return parse_idx(read_verified(path, spec), str(path))
        except DataError as exc:
            if not _ours_to_heal(path):
                raise  # a folder the user named: report the bad file, never replace it
            try:
                path.unlink(missing_ok=True)  # our cache: drop the bad copy, fetch it again
            except OSError:
                raise exc from None
    return None


def load_splits(ds: Dataset, splits: tuple[str, ...], data_dir: str | Path | None = None,
                download: bool = True, progress=None,
                recorded: str | Path | None = None) -> dict[str, np.ndarray]:
    """Verified arrays of `splits`. Missing files are downloaded into the cache (the last
    step of the lookup; never when --data-dir names the folder); when that fails too,
    the DataError names every missing file and the ways to provide them.
    `progress(url, done, total)` is called while downloading (see download.Progress).
    """
    check_data_dir(data_dir)
    arrays = {s: _load_local(ds, s, data_dir, recorded) for s in splits}
    missing = [s for s in splits if arrays[s] is None]
    if missing and (not download or data_dir is not None):
        raise _not_found(ds, missing, data_dir, recorded)
    from mnist_cnn.download import fetch_file  # network code only when needed

    for i, split in enumerate(missing):
        try:
            path = fetch_file(ds, split, cache_dir(), progress=progress)
        except DownloadError as exc:  # the first file that fails: the rest would fail too
            raise _not_found(ds, missing[i:], None, recorded, exc.tried or str(exc)) from None
        arrays[split] = parse_idx(read_verified(path, ds.files[split]), str(path))
    return arrays


def load_split(ds: Dataset, split: str, data_dir: str | Path | None = None,
               download: bool = True, progress=None) -> np.ndarray:
    """One verified split as an array (see load_splits)."""
    return load_splits(ds, (split,), data_dir, download, progress)[split]


Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
TEST_SPLITS = ("t10k-images", "t10k-labels")


def _pairs(ds: Dataset, arrays: dict[str, np.ndarray], parts: tuple[str, ...]):
    out = []
    for part in parts:
        images, labels = arrays[f"{part}-images"], arrays[f"{part}-labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{ds.name}: {part} images {images.shape} and labels "
                            f"{labels.shape} do not match")
        out.append((images, labels))
    return out


def _keras_arrays(ds: Dataset, data_dir: str | Path | None, recorded: str | Path | None,
                  probe: str, keys: tuple[str, ...]) -> tuple[np.ndarray, ...] | None:
    """`keys` from Keras' own mnist.npz, when no folder was named and the `probe` split is
    found nowhere of ours (None otherwise, or when Keras has no verified copy)."""
    if data_dir is not None or find_file(ds, probe, None, recorded) is not None:
        return None
    npz = _keras_npz(ds)
    if npz is None:
        return None
    with np.load(npz, allow_pickle=False) as z:
        return tuple(z[key] for key in keys)


def load_data(name: str = "mnist", data_dir: str | Path | None = None,
              download: bool = True, recorded: str | Path | None = None) -> Arrays:
    """Keras-style `((x_train, y_train), (x_test, y_test))` as uint8 arrays.

    Shapes: (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).
    """
    ds = get_dataset(name)
    check_data_dir(data_dir)
    keras = _keras_arrays(ds, data_dir, recorded, "train-images",
                          ("x_train", "y_train", "x_test", "y_test"))
    if keras is not None:
        return keras[:2], keras[2:]
    train, test = _pairs(ds, load_splits(ds, SPLITS, data_dir, download, recorded=recorded),
                         ("train", "t10k"))
    return train, test


def load_test(name: str = "mnist", data_dir: str | Path | None = None,
              download: bool = True, recorded: str | Path | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The test set alone, `(x_test, y_test)`: evaluation needs only the two t10k files.
    `recorded` is a run's data folder (RunMeta.data_dir), searched after $MNIST_CNN_DATA."""
    ds = get_dataset(name)
    check_data_dir(data_dir)
    keras = _keras_arrays(ds, data_dir, recorded, "t10k-images", ("x_test", "y_test"))
    if keras is not None:
        return keras
    (test,) = _pairs(ds, load_splits(ds, TEST_SPLITS, data_dir, download, recorded=recorded),
                     ("t10k",))
    return test
