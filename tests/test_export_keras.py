"""Keras 3 `.keras` export: our import reads back exactly the weights we wrote; the archive
has the layout real Keras writes (checked against files Keras saved); and, where a Python
with Keras is at hand, real Keras loads it in safe mode and agrees within 1e-5."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from export_models import custom_net
from mnist_cnn.checkpoint import load_model
from mnist_cnn.export_keras import keras_bytes, keras_config, write_keras
from mnist_cnn.interop import import_keras
from mnist_cnn.keras import layers, models
from mnist_cnn.model import build_model

h5py = pytest.importorskip("h5py", reason="the [keras] extra (in [dev]) is not installed")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "keras"
# A Python that has Keras 3 (never mnist-cnn's own venv): e.g. /tmp/tfvenv/bin/python.
KERAS_PYTHON = os.environ.get("MNIST_CNN_KERAS_PYTHON") or (
    sys.executable if importlib.util.find_spec("keras") else None)


@pytest.fixture(scope="module")
def custom(mnist):
    (x_train, y_train), _ = mnist
    return custom_net(x_train[:6400], y_train[:6400])


def _fixture(name: str) -> zipfile.ZipFile:
    path = FIXTURES / f"{name}.keras"
    if not path.is_file():
        pytest.fail(f"Keras fixture missing: {path}")
    return zipfile.ZipFile(path)


def _h5_paths(h5) -> dict[str, tuple]:
    """Every group and dataset under layers/ and vars/: path -> shape (groups: ())."""
    found: dict[str, tuple] = {}

    def visit(name: str, obj) -> None:  # h5py stops at the first non-None return
        found[name] = getattr(obj, "shape", ())

    h5.visititems(visit)
    return {k: v for k, v in found.items() if not k.startswith("optimizer")}


@pytest.mark.parametrize("which", ["lesson", "custom"])
def test_our_import_reads_back_exactly_the_weights_we_wrote(which, trained_run, custom,
                                                             tmp_path):
    net = load_model(trained_run)[0] if which == "lesson" else custom
    write_keras(net, tmp_path / "m.keras")
    back = import_keras(tmp_path / "m.keras")
    assert back.arch.layers == net.arch.layers
    ours, theirs = net.state_dict(), back.state_dict()
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours), "weights differ"


def test_the_archive_has_the_layout_keras_writes(trained_run):
    """Against the lesson's network as real Keras saved it: the same members, layer
    classes and names, h5 groups and weight shapes (the optimiser's state aside)."""
    net = load_model(trained_run)[0]
    with zipfile.ZipFile(io.BytesIO(keras_bytes(net))) as ours, _fixture("fixture_seed") as ref:
        assert sorted(ours.namelist()) == sorted(ref.namelist())
        assert set(json.loads(ours.read("metadata.json"))) >= {"keras_version", "date_saved"}
        ours_cfg, ref_cfg = (json.loads(z.read("config.json")) for z in (ours, ref))
        with h5py.File(io.BytesIO(ours.read("model.weights.h5"))) as a, \
                h5py.File(io.BytesIO(ref.read("model.weights.h5"))) as b:
            assert _h5_paths(a) == _h5_paths(b)
            assert a["vars"].attrs["name"] == b["vars"].attrs["name"]
            assert a["layers/conv2d_1/vars"].attrs["name"] == "conv2d_1"
    for key in ("module", "class_name"):
        assert ours_cfg[key] == ref_cfg[key]
    pairs = zip(ours_cfg["config"]["layers"], ref_cfg["config"]["layers"], strict=True)
    for mine, theirs in pairs:
        assert (mine["class_name"], mine["config"]["name"]) == \
            (theirs["class_name"], theirs["config"]["name"])
        assert mine.get("build_config") == theirs.get("build_config")


def test_every_config_key_we_write_is_one_keras_writes():
    """Keras rebuilds each layer with `cls(**config)`: a key it does not know would fail the
    load. Each key we write (for every layer type) appears in files real Keras saved."""
    keras_keys: dict[str, set[str]] = {}
    for name in ("fixture_seed", "batchnorm_dropout", "avgpool_tanh", "same_strides"):
        with _fixture(name) as archive:
            for entry in json.loads(archive.read("config.json"))["config"]["layers"]:
                keras_keys.setdefault(entry["class_name"], set()).update(entry["config"])
    arch = {"layers": [{"type": "Conv2D", "filters": 4, "padding": "same"},
                       {"type": "BatchNormalization"}, {"type": "AveragePooling2D"},
                       {"type": "MaxPooling2D"}, {"type": "Flatten"},
                       {"type": "Dropout", "rate": 0.5},
                       {"type": "Dense", "units": 10, "activation": "softmax"}]}
    from mnist_cnn.model import Architecture

    config = keras_config(build_model(Architecture.from_dict(arch)))
    written = {e["class_name"]: set(e["config"]) for e in config["config"]["layers"]}
    assert set(written) == set(keras_keys)  # every layer type, and the InputLayer
    for kind, keys in written.items():
        assert keys <= keras_keys[kind], f"{kind}: {keys - keras_keys[kind]}"


def test_the_keras_api_saves_a_keras_file_it_loads_back(tmp_path, mnist):
    model = models.Sequential([layers.Input((28, 28, 1)),
                               layers.Conv2D(8, 3, strides=2, padding="same",
                                             activation="relu"),
                               layers.BatchNormalization(), layers.Flatten(),
                               layers.Dropout(0.2), layers.Dense(10, activation="softmax")])
    _, (x_test, _) = mnist
    x = x_test[:64].astype(np.float32)[..., None] / 255
    model.save(tmp_path / "api.keras")
    again = models.load_model(tmp_path / "api.keras")
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_export_writes_nothing_half_done(tmp_path, monkeypatch):
    """A failure while building the archive leaves no file, not even a temporary one."""
    import mnist_cnn.export_keras as export_keras

    def broken(net, name):
        raise OSError("disk full")

    monkeypatch.setattr(export_keras, "_weights_h5", broken)
    with pytest.raises(OSError):
        write_keras(build_model("lesson", seed=0), tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(KERAS_PYTHON is None, reason="no Python with Keras 3 here: set "
                    "MNIST_CNN_KERAS_PYTHON (see docs/EXPORT.md); TensorFlow is never a "
                    "dependency of mnist-cnn")
def test_real_keras_loads_our_files_in_safe_mode_and_agrees(trained_run, data_dir, tmp_path):
    script = REPO / "benchmarks" / "keras_check.py"
    subprocess.run([sys.executable, str(script), "write", str(tmp_path), "--run",
                    str(trained_run), "--data-dir", str(data_dir)], check=True)
    done = subprocess.run([KERAS_PYTHON, str(script), "check", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert max(result["max_abs_diff"].values()) <= 1e-5
