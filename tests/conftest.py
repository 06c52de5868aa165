"""Shared fixtures: the real data (../shared/data via $MNIST_CNN_DATA) and one trained run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn import data

REPO = Path(__file__).resolve().parents[1]
_DEFAULT_DATA = REPO.parent / "shared" / "data"


def _data_dir() -> Path | None:
    env = os.environ.get(data.ENV_VAR)
    if env and Path(env).is_dir():
        return Path(env).resolve()  # tests run commands in other folders too
    return _DEFAULT_DATA if _DEFAULT_DATA.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with real MNIST / Fashion-MNIST. Missing data is a failure, not a skip."""
    found = _data_dir()
    if found is None:
        pytest.fail(f"real data not found: set {data.ENV_VAR} or provide {_DEFAULT_DATA}")
    return found


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real cache or home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture(scope="session")
def mnist(data_dir):
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays."""
    return data.load_data("mnist", data_dir)


@pytest.fixture(scope="session")
def trained_run(data_dir, tmp_path_factory) -> Path:
    """One real run shared by the tests that need a trained model (evaluate, predict, serve,
    report, browser): the fast recipe, 0.8 of an epoch on real MNIST (about 99.1%, seconds).
    The lesson's own recipe has its integration test in test_integration.py."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.run import train_run

    run_dir = tmp_path_factory.mktemp("runs") / "fast-seed0"
    outcome = train_run(TrainConfig(recipe="fast", seed=0), run_dir, data_dir)
    assert outcome.test.accuracy >= 0.988, f"fast-recipe accuracy {outcome.test.accuracy:.4f}"
    return run_dir


def tiny_mnist(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images with labels, for fast loop tests that need no real data."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.fixture(scope="session")
def written_report(trained_run, data_dir, tmp_path_factory):
    """The report of `trained_run`, written once for the report and report-page tests."""
    from mnist_cnn.report import write_report

    return write_report(trained_run, tmp_path_factory.mktemp("report"), data_dir)
