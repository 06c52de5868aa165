"""Hostile files and flags get one clear error line, never a traceback, a hang or unbounded
memory.

Value cases run through `mnist_cnn.cli.main` (what the `mnist-cnn` script calls: anything
escaping it would be a traceback); cases about memory, hangs and the real process (FIFOs,
/dev/zero, huge Keras datasets, over-long names) run `python -m mnist_cnn` in a subprocess
whose own peak memory is measured (tests/clirun.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import hostile_keras
from clirun import clean_env, cli, run
from conftest import tiny_mnist
from mnist_cnn import checkpoint, data
from mnist_cnn.cli import main
from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import ModelFileError
from mnist_cnn.model import build_model
from mnist_cnn.train import fit

CORPUS = Path(__file__).parent / "corpus"
MAX_RSS_MB = 400  # torch and the test set take about 300 MB; a 3.6 GB read would not fit
LONG = "x" * 300  # one path component over NAME_MAX (255)


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("mnist-cnn: error: "), captured.err
    return lines[0]


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    """A complete run (untrained weights are enough: nothing here evaluates them) with a
    real checkpoint from one step of training."""
    run = tmp_path / "run"
    checkpoint.save_model(run, build_model("lesson", seed=0), {"dataset": "mnist"})
    states: list = []
    fit(TrainConfig(max_steps=1, batch_size=8, device="cpu"), tiny_mnist(8),
        on_epoch=states.append)
    checkpoint.save_state(run, states[-1])
    checkpoint.write_history(run, [{"epoch": 1, "loss": 0.5, "accuracy": 0.9}])
    return run


# ---------------------------------------------------------------- flags, before any data

@pytest.mark.parametrize("flags, message", [
    (["--lr", "nan"], "--lr must be a finite number above 0, got nan"),
    (["--lr", "-1"], "--lr must be a finite number above 0, got -1.0"),
    (["--seed", str(10**23)], "--seed must be an integer in 0..2**63-1"),
    (["--overwrite"], "--overwrite goes with --out"),
])
def test_bad_flags_fail_before_any_data_is_read(tmp_path, flags, message):
    # No data anywhere and mirrors at a closed port: a data error would mean data came first.
    result = run(cli("train", *flags), env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and message in result.one_error_line()
    assert result.stdout == "" and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv", [
    ["evaluate", f"runs/{LONG}"], ["report", f"runs/{LONG}"],
    ["data", "where", "--data-dir", LONG], ["train", "--out", f"runs/{LONG}"],
    ["predict", f"runs/{LONG}", "x.png"],
], ids=["evaluate", "report", "data-where", "train-out", "predict"])
def test_an_over_long_name_is_one_line(tmp_path, argv):
    (tmp_path / "x.png").write_bytes(b"")  # predict looks at its images first
    (tmp_path / "runs").mkdir()  # so that the long name itself is what the system refuses
    result = run(cli(*argv), env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode in (1, 2)
    line = result.one_error_line()
    assert LONG[:50] in line and ("too long" in line or "no such" in line), line


# ---------------------------------------------------------------- checkpoint values

STATE_CHANGES = {
    "batch_size=0": lambda s: s["config"].update(batch_size=0),
    "lr=nan": lambda s: s["config"].update(lr=float("nan")),
    "seed=2**70": lambda s: s["config"].update(seed=2**70),
    "steps=-10**9": lambda s: s.update(steps=-10**9),
    "history=['a','b']": lambda s: s.update(history=["a", "b"]),
    "progress=garbage": lambda s: s.update(progress={"step": "x"}),
    "progress.loss_sum=nan": lambda s: s.update(progress={
        "order_rng": torch.Generator().get_state(), "step": 1, "seen": 8,
        "loss_sum": torch.tensor(float("nan")), "correct": torch.tensor(1)}),
}


@pytest.mark.parametrize("change", STATE_CHANGES, ids=list(STATE_CHANGES))
def test_a_checkpoint_with_bad_values_is_refused_on_resume(run_dir, capsys, change):
    state = torch.load(run_dir / checkpoint.STATE, weights_only=True)
    STATE_CHANGES[change](state)
    checkpoint.save_state(run_dir, state)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run_dir)]) == 1
    assert "not a training checkpoint" in _one_line(capsys)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


# ---------------------------------------------------------------- model.json and history

META_CHANGES = {
    "dataset=[]": {"dataset": []}, "dataset='cifar'": {"dataset": "cifar"},
    "timing=[]": {"timing": []}, "hyperparameters=[1]": {"hyperparameters": [1]},
    "timing.train_seconds='x'": {"timing": {"train_seconds": "x"}},
    "data_dir=relative": {"data_dir": "data"}, "data_dir=5": {"data_dir": 5},
}


@pytest.mark.parametrize("change", META_CHANGES, ids=list(META_CHANGES))
@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_model_json_with_bad_values_is_one_line(run_dir, capsys, change, command):
    meta = json.loads((run_dir / checkpoint.META).read_text())
    (run_dir / checkpoint.META).write_text(json.dumps({**meta, **META_CHANGES[change]}))
    assert main([command, str(run_dir)]) == 1
    assert "model.json" in _one_line(capsys)


@pytest.mark.parametrize("path", sorted((CORPUS / "history").iterdir()), ids=lambda p: p.name)
def test_a_damaged_history_is_refused_by_name(run_dir, path):
    shutil.copyfile(path, run_dir / checkpoint.HISTORY)
    with pytest.raises(ModelFileError, match="history.csv: damaged history"):
        checkpoint.read_history(run_dir)


@pytest.mark.parametrize("name", ["nan-epoch.csv", "no-epoch-column.csv"])
def test_a_damaged_history_is_one_line_in_report(run_dir, capsys, name, data_dir):
    """Through the command (the report reads history.csv after computing everything else,
    so two files stand for the corpus here)."""
    shutil.copyfile(CORPUS / "history" / name, run_dir / checkpoint.HISTORY)
    assert main(["report", str(run_dir), "--data-dir", str(data_dir)]) == 1
    assert "history.csv: damaged history" in _one_line(capsys)


# ---------------------------------------------------------------- FIFOs, devices, links

def _fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("name, make, words", [
    ("model.json", _fifo, "is a FIFO"),
    ("model.safetensors", _fifo, "is a FIFO"),
    ("model.json", lambda p: p.unlink() or p.symlink_to("/dev/zero"), "is a device"),
], ids=["model.json-fifo", "weights-fifo", "model.json-dev-zero"])
def test_special_files_in_a_run_are_refused_not_waited_on(run_dir, tmp_path, name, make,
                                                         words):
    make(run_dir / name)
    result = run(cli("evaluate", run_dir), env=clean_env(tmp_path), timeout=120)
    assert result.returncode == 1 and words in result.one_error_line()
    assert result.peak_rss_mb < MAX_RSS_MB


@pytest.mark.parametrize("image", ["/dev/zero", "fifo"])
def test_predict_reads_images_bounded(run_dir, tmp_path, image):
    if image == "fifo":
        image = str(_fifo(tmp_path / "digit.png"))
    result = run(cli("predict", run_dir, image), env=clean_env(tmp_path), timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert ("is a device" if image == "/dev/zero" else "is a FIFO") in result.stderr
    assert result.peak_rss_mb < MAX_RSS_MB, f"{result.peak_rss_mb:.0f} MB"


# ---------------------------------------------------------------- Keras files

@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("name, words", [
    ("config-is-a-list", "only Keras Sequential models"),
    ("one-weight", "holds 1 weights, expected 2"),
    ("bytes-weight", "expected floats (32,)"),
    ("nan-weight", "non-finite"),
    ("huge-fill-value", "(30000, 30000), expected floats (3, 3, 1, 32)"),
])
def test_hostile_keras_files_are_one_line_in_bounded_memory(tmp_path, data_dir, suffix,
                                                            name, words):
    model = hostile_keras.make(name, suffix, tmp_path)
    env = clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir))
    result = run(cli("import-keras", model, "--out", tmp_path / "run"), env=env, timeout=180)
    assert result.returncode == 1 and words in result.one_error_line()
    assert result.peak_rss_mb < MAX_RSS_MB, f"{result.peak_rss_mb:.0f} MB"
    assert not (tmp_path / "run").exists()  # nothing half-written, no run to refuse later


# ---------------------------------------------------------------- data folder entries

def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere")


def _loop(path: Path) -> None:
    path.symlink_to(path)


@pytest.mark.parametrize("make, words", [
    (_dangling, "is a broken symbolic link"), (lambda p: p.mkdir(), "is a folder"),
    (lambda p: os.mkfifo(p), "is a FIFO"), (_loop, "is a loop of symbolic links"),
], ids=["dangling-link", "folder", "fifo", "link-loop"])
@pytest.mark.parametrize("how", ["--data-dir", "MNIST_CNN_DATA"])
def test_a_data_entry_that_is_not_a_file_is_named(tmp_path, run_dir, make, words, how):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    entry = folder / data.DATASETS["mnist"].files["t10k-images"].name
    make(entry)
    env = clean_env(tmp_path / "home")
    argv = ["evaluate", run_dir]
    if how == "--data-dir":
        argv += ["--data-dir", tmp_path / "data"]
    else:
        env["MNIST_CNN_DATA"] = str(tmp_path / "data")
    result = run(cli(*argv), env=env, timeout=120)
    line = result.one_error_line()
    assert result.returncode == 1 and f"{entry}: {words}" in line
    assert "download" not in line  # named, not skipped on the way to the mirrors


def test_healing_never_deletes_through_a_linked_cache(tmp_path, monkeypatch):
    """A cache folder that is a link to the user's data folder is not ours to clean."""
    user = tmp_path / "my-data"
    (user / "mnist").mkdir(parents=True)
    spec = data.DATASETS["mnist"].files["t10k-labels"]
    corrupt = user / "mnist" / spec.name
    corrupt.write_bytes(b"\0" * spec.size)
    cache = data.cache_dir()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.symlink_to(user)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(data.DataError, match="sha256"):
        data.load_split(data.DATASETS["mnist"], "t10k-labels", download=False)
    assert corrupt.read_bytes() == b"\0" * spec.size
    (cache.parent / "real").mkdir()  # a file linked from inside a real cache: also kept
    cache.unlink()
    (cache.parent / "real").rename(cache)
    (cache / "mnist").mkdir()
    (cache / "mnist" / spec.name).symlink_to(corrupt)
    with pytest.raises(data.DataError, match="sha256"):
        data.load_split(data.DATASETS["mnist"], "t10k-labels", download=False)
    assert corrupt.read_bytes() == b"\0" * spec.size
