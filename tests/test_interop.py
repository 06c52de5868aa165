"""A model trained by real Keras on the lesson's network: our network computes the same
function (the reference check for layer order, kernel layout and Flatten's order)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn.cli import main
from mnist_cnn.errors import ModelFileError
from mnist_cnn.interop import import_keras
from mnist_cnn.predict import Predictor

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "keras"


@pytest.fixture(scope="module")
def keras_probs():
    path = FIXTURES / "fixture_seed_probs_test1000.npy"
    if not path.is_file():
        pytest.fail(f"Keras fixture missing: {path}")
    return np.load(path)


@pytest.mark.parametrize("name", ["fixture_seed.keras", "fixture_seed.h5"])
def test_imported_model_matches_keras_outputs(name, keras_probs, mnist):
    model = import_keras(FIXTURES / name)
    assert model.arch.name == "lesson"
    _, (x_test, _) = mnist
    probs = Predictor(model, {}).probabilities(x_test[:1000])
    np.testing.assert_allclose(probs, keras_probs, atol=1e-5)
    assert np.array_equal(probs.argmax(1), keras_probs.argmax(1))


def test_import_keras_cli_writes_a_usable_run(tmp_path, data_dir, capsys):
    run = tmp_path / "keras-run"
    assert main(["import-keras", str(FIXTURES / "fixture_seed.keras"), "--out", str(run),
                 "--data-dir", str(data_dir)]) == 0
    meta = json.loads((run / "model.json").read_text())
    assert meta["architecture"]["name"] == "lesson" and meta["recipe"] == "keras"
    assert "test accuracy" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--json", "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", b"PK\x03\x04broken zip"])
def test_damaged_keras_files_are_refused(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        import_keras(path)
