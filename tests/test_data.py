"""IDX parsing, verification and the lookup order, on real and on damaged files."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from mnist_cnn import data
from mnist_cnn.errors import DataError, UsageError


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.parse_idx(_idx(arr)), arr)


@pytest.mark.parametrize("mutate, message", [
    (lambda raw: b"", "too short"),
    (lambda raw: b"\x00\x00\x08", "too short"),
    (lambda raw: b"\x12\x34" + raw[2:], "bad magic"),
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "bad magic"),  # float32 element type
    (lambda raw: raw[:3] + b"\x07" + raw[4:], "bad magic"),  # 7 dimensions
    (lambda raw: raw[:10], "truncated IDX header"),
    (lambda raw: raw[:-1], "truncated"),
    (lambda raw: raw + b"\x00", "trailing bytes"),
    (lambda raw: raw[:4] + (2**31).to_bytes(4, "big") + raw[8:], "truncated"),  # absurd count
])
def test_parse_idx_rejects_damage(mutate, message):
    raw = _idx(np.zeros((3, 4, 5), dtype=np.uint8))
    with pytest.raises(DataError, match=message) as info:
        data.parse_idx(mutate(raw), "some-file")
    assert "some-file" in str(info.value)


def test_real_mnist_shapes_and_label_counts(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                            1009]
    assert abs(x_train.mean() / 255 - 0.1307) < 1e-3


def test_fashion_mnist_loads(data_dir):
    (x_train, y_train), (x_test, _) = data.load_data("fashion-mnist", data_dir)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10


def _copy_split(data_dir, dest, split="t10k-labels", raw=False):
    spec = data.DATASETS["mnist"].files[split]
    src = data_dir / "mnist" / (spec.name + ".gz")
    if raw:
        (dest / spec.name).write_bytes(gzip.decompress(src.read_bytes()))
        return dest / spec.name
    shutil.copy(src, dest / (spec.name + ".gz"))
    return dest / (spec.name + ".gz")


def test_flat_folder_with_raw_files_is_found(data_dir, tmp_path):
    path = _copy_split(data_dir, tmp_path, raw=True)
    ds = data.DATASETS["mnist"]
    assert data.find_file(ds, "t10k-labels", tmp_path) == path
    labels = data.load_split(ds, "t10k-labels", tmp_path, download=False)
    assert labels.shape == (10000,)


def test_data_dir_comes_before_environment(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(data_dir))
    path = _copy_split(data_dir, tmp_path)
    assert data.find_file(data.DATASETS["mnist"], "t10k-labels", tmp_path) == path
    assert data.find_file(data.DATASETS["mnist"], "t10k-labels").is_relative_to(data_dir)


def test_corrupt_copy_is_refused(data_dir, tmp_path):
    path = _copy_split(data_dir, tmp_path, raw=True)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="sha256"):
        data.load_split(data.DATASETS["mnist"], "t10k-labels", tmp_path, download=False)


def test_check_files_finds_verifies_and_names_each_problem(data_dir, tmp_path):
    ds = data.DATASETS["mnist"]
    good = _copy_split(data_dir, tmp_path, "t10k-labels")
    bad = _copy_split(data_dir, tmp_path, "t10k-images", raw=True)
    raw = bytearray(bad.read_bytes())
    raw[-1] ^= 0xFF
    bad.write_bytes(bytes(raw))
    checks = {c.name: c for c in data.check_files(ds, tmp_path)}
    assert list(checks) == [ds.files[split].name for split in data.SPLITS]
    assert checks["t10k-labels-idx1-ubyte"].ok and checks["t10k-labels-idx1-ubyte"].path == good
    images = checks["t10k-images-idx3-ubyte"]
    assert images.path == bad and not images.ok and "sha256" in images.problem
    assert [c.path for c in checks.values()][:2] == [None, None]  # no training files here
    where = data.check_files(ds, tmp_path, verify=False)  # found, not read: no problem seen
    assert [c.ok for c in where] == [False, False, True, True]


def test_truncated_gzip_is_refused(data_dir, tmp_path):
    path = _copy_split(data_dir, tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=str(path)):
        data.load_split(data.DATASETS["mnist"], "t10k-labels", tmp_path, download=False)


def test_not_found_says_where_it_looked_and_every_way_to_provide_the_files(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(DataError) as info:
        data.load_data("mnist", download=False)
    message = str(info.value)
    assert str(data.cache_dir()) in message and "--data-dir DIR" in message
    assert f"{data.ENV_VAR}=DIR" in message and "mnist-cnn data fetch" in message
    assert "mnist-cnn data where" in message
    assert all(spec.name in message for spec in data.DATASETS["mnist"].files.values())


def test_a_data_dir_that_lacks_the_files_is_an_error_naming_it(tmp_path, data_dir,
                                                               monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(data_dir))  # the files are there: never used
    with pytest.raises(DataError, match=f"--data-dir {tmp_path} does not hold mnist's "
                                        "train-images-idx3-ubyte"):
        data.load_data("mnist", tmp_path)
    with pytest.raises(DataError, match="--data-dir no/such/folder: no such folder"):
        data.load_data("mnist", "no/such/folder")


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(UsageError, match="mnist, fashion-mnist"):
        data.load_data("cifar10")


def test_pinned_digests_match_the_shared_readme(data_dir):
    readme = (data_dir / "README.md").read_text()
    for ds in data.DATASETS.values():
        for spec in ds.files.values():
            assert f"{ds.name}/{spec.name} | {spec.size} |" in readme
            assert spec.sha256 in readme


def test_keras_npz_is_used_when_its_digest_matches(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    npz = tmp_path / ".keras" / "datasets" / "mnist.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    # A file whose digest does not match is ignored (here: not found, no download).
    with pytest.raises(DataError, match="not found"):
        data.load_data("mnist", download=False)
    monkeypatch.setattr(data, "KERAS_MNIST_NPZ_SHA256", hashlib.sha256(npz.read_bytes())
                        .hexdigest())
    (x_train, _), (x_test, _) = data.load_data("mnist", download=False)
    assert x_train.shape == (2, 28, 28) and x_test.shape == (1, 28, 28)
    x_test, y_test = data.load_test("mnist", download=False)
    assert x_test.shape == (1, 28, 28) and y_test.shape == (1,)
