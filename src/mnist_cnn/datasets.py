"""The dataset registry: each dataset's four IDX files with their pinned digests.

Every file is verified against the sha256 of its *uncompressed* bytes, so any faithful copy
(gzip or raw, ours or another tool's) is accepted and a corrupt one never is. This module
knows what the files are; `data` finds and parses them, `download` fetches them.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

from mnist_cnn.errors import DataError, UsageError
from mnist_cnn.files import open_regular

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


def get_dataset(name: str) -> Dataset:
    """The registered dataset `name`, or a UsageError listing the valid names."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")\
            from None


def read_verified(path: Path, spec: DataFile) -> bytes:
    """Read `path` (.gz or raw), bounded by the expected size, and check its sha256."""
    # Opened without blocking and checked on the open file: a FIFO is refused, not waited on.
    with open_regular(path, DataError, "data file") as fh:
        try:
            if path.suffix == ".gz":
                with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                    raw = gz.read(spec.size + 1)  # bounded: a gzip bomb cannot fill memory
            else:
                raw = fh.read(spec.size + 1)  # bounded: /dev/zero cannot fill memory either
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
