"""Training that survives: exact resume, Ctrl-C, a kill during a save, NaN, refused resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from clirun import sliced_train
from conftest import tiny_mnist
from mnist_cnn import checkpoint
from mnist_cnn.cli import main
from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import ModelFileError, OutputError
from mnist_cnn.model import build_model
from mnist_cnn.train import fit


def _saving(run_dir: Path, stop_after: int | None = None):
    def on_epoch(state):
        checkpoint.save_state(run_dir, state)
        if state.epoch == stop_after:
            raise KeyboardInterrupt  # as if Ctrl-C arrived right after the save
    return on_epoch


@pytest.mark.parametrize("recipe", ["lesson", "fast", "accurate"])
def test_resumed_run_ends_with_exactly_the_same_weights(recipe, tmp_path):
    cfg = TrainConfig(recipe=recipe, epochs=3, batch_size=32, seed=7, device="cpu")
    train = tiny_mnist(192, seed=1)
    whole = fit(cfg, train)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, train, on_epoch=_saving(tmp_path, stop_after=1))
    state = checkpoint.load_state(tmp_path)  # through the disk, as a real resume is
    assert state.epoch == 1 and state.steps == 6
    resumed = fit(cfg, train, state=state, on_epoch=_saving(tmp_path))
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == whole.history and resumed.steps == whole.steps == 18
    assert checkpoint.load_state(tmp_path).epoch == 3


def _interrupt_after(run_dir: Path, saves: int):
    seen = []

    def on_save(state):
        checkpoint.save_state(run_dir, state)
        seen.append(state)
        if len(seen) == saves:
            raise KeyboardInterrupt
    return on_save


@pytest.mark.parametrize("recipe", ["lesson", "fast"])
def test_a_resume_from_inside_an_epoch_is_exact(recipe, tmp_path):
    """A checkpoint taken between two steps of an epoch resumes to the same weights and
    history as a run never stopped (the epoch's order, position and running sums)."""
    cfg = TrainConfig(recipe=recipe, epochs=2, batch_size=32, seed=3, device="cpu")
    train = tiny_mnist(224, seed=2)  # 7 steps an epoch
    whole = fit(cfg, train)
    with pytest.raises(KeyboardInterrupt):  # the 2nd save is inside epoch 1, after step 4
        fit(cfg, train, on_epoch=_interrupt_after(tmp_path, 2), checkpoint_steps=2)
    state = checkpoint.load_state(tmp_path)
    assert state.epoch == 0 and state.progress["step"] == 4 and state.steps == 4
    resumed = fit(cfg, train, state=state, checkpoint_steps=2)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == whole.history and resumed.steps == whole.steps == 14


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(data_dir, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "MNIST_CNN_DATA": str(data_dir)}
    args = ("--epochs", "3", "--batch-size", "32", "--device", "cpu", "--out", str(run))
    proc = subprocess.Popen(sliced_train(*args), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    staged = tmp_path / ".run.partial"  # a new run is built beside its folder
    deadline = time.monotonic() + 120
    while not (staged / checkpoint.STATE).exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"train --resume {run}" in err
    state = checkpoint.load_state(run)
    assert 1 <= state.epoch < 3 and not (run / checkpoint.WEIGHTS).exists()
    done = subprocess.run(sliced_train("--resume", str(run)), env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"Epoch {state.epoch + 1}/3" in done.stdout and "Epoch 1/3" not in done.stdout
    model, meta = checkpoint.load_model(run)
    assert len(checkpoint.read_history(run)) == 3 and meta.config.epochs == 3


# ---------------------------------------------------------------- a kill during a save

KILL_LOOP = """
import sys, torch
from pathlib import Path
from mnist_cnn import checkpoint
run = Path(sys.argv[1])
for i in range(1, 10**6):  # each state holds 24 MB of the value i: a slow, checkable save
    checkpoint.save_state(run, {"epoch": i, "big": torch.full((6_000_000,), float(i))})
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13, 0.31])
def test_sigkill_during_save_leaves_the_last_good_checkpoint(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-c", KILL_LOOP, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / checkpoint.STATE).exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    state = torch.load(tmp_path / checkpoint.STATE, weights_only=True)
    assert state["epoch"] >= 1 and torch.all(state["big"] == state["epoch"])


def _crash_halfway(monkeypatch):
    """Every file write stops half way with a full disk."""
    def write_bytes(self, data):
        with open(self, "wb") as fh:
            fh.write(data[:100])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_a_crash_while_saving_state_keeps_the_previous_one(tmp_path, monkeypatch):
    checkpoint.save_state(tmp_path, {"epoch": 1, "w": torch.ones(3)})
    _crash_halfway(monkeypatch)
    with pytest.raises(OutputError, match="state.pt: No space left on device"):
        checkpoint.save_state(tmp_path, {"epoch": 2, "w": torch.zeros(3)})
    assert torch.load(tmp_path / checkpoint.STATE, weights_only=True)["epoch"] == 1
    assert [p.name for p in (tmp_path / "checkpoint").iterdir()] == ["state.pt"]


def test_a_crash_while_saving_the_model_keeps_the_previous_one(tmp_path, monkeypatch):
    old = build_model("lesson", seed=1)
    checkpoint.save_model(tmp_path, old, {"dataset": "mnist"})
    before = (tmp_path / checkpoint.WEIGHTS).read_bytes()
    _crash_halfway(monkeypatch)
    with pytest.raises(OSError):  # an OutputError is an OSError too
        checkpoint.save_model(tmp_path, build_model("lesson", seed=2), {"dataset": "mnist"})
    assert (tmp_path / checkpoint.WEIGHTS).read_bytes() == before
    loaded, _ = checkpoint.load_model(tmp_path)
    assert torch.equal(loaded.state_dict()["layers.conv2d.weight"],
                       old.state_dict()["layers.conv2d.weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


# ---------------------------------------------------------------- NaN, refused resumes

def test_non_finite_loss_exits_with_one_line_and_keeps_the_good_model(data_dir, tmp_path,
                                                                      capsys):
    run = tmp_path / "run"
    checkpoint.save_model(run, build_model("lesson", seed=0), {"dataset": "mnist"})
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code = main(["train", "--lr", "1e12", "--max-steps", "8", "--device", "cpu",
                 "--data-dir", str(data_dir), "--out", str(run), "--overwrite"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "non-finite" in err and "last good" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging left


def _checkpointed_run(run_dir: Path) -> None:
    cfg = TrainConfig(epochs=2, max_steps=2, batch_size=16, device="cpu")
    states = []
    fit(cfg, tiny_mnist(64), on_epoch=states.append)
    states[-1].config = TrainConfig(epochs=2, batch_size=16, device="cpu")
    checkpoint.save_state(run_dir, states[-1])


@pytest.mark.parametrize("flags, message", [
    (["--lr", "0.5"], "--lr 0.5"),
    (["--batch-size", "64", "--arch", "lesson-pool3"], "--arch lesson-pool3"),
    (["--recipe", "fast"], "--recipe fast"),
])
def test_resume_with_different_settings_is_refused(tmp_path, capsys, flags, message):
    _checkpointed_run(tmp_path)
    before = (tmp_path / checkpoint.STATE).read_bytes()
    assert main(["train", "--resume", str(tmp_path), *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert "refusing to resume with different settings" in err and message in err
    assert len(err.splitlines()) == 1 and (tmp_path / checkpoint.STATE).read_bytes() == before


def test_resume_without_a_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no resumable checkpoint" in err and len(err.splitlines()) == 1


def test_a_checkpoint_with_a_foreign_config_is_refused(tmp_path, capsys):
    _checkpointed_run(tmp_path)
    state = checkpoint.load_state(tmp_path).to_dict()
    state["config"]["exec"] = "rm -rf /"
    checkpoint.save_state(tmp_path, state)
    with pytest.raises(ModelFileError):
        checkpoint.load_state(tmp_path)
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "not a training checkpoint" in capsys.readouterr().err


def test_an_interrupted_epoch_is_not_resumed_by_the_next_fit_call():
    """Only a checkpoint resumes inside an epoch: the API's next fit() starts a fresh epoch
    (as Keras' does), however the previous call was stopped."""
    from mnist_cnn.optimizers import OptimizerSpec
    from mnist_cnn.train import Plan, Training, run_epochs

    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    t = Training.start(build_model("lesson", seed=0), OptimizerSpec.named("adam", 1e-3),
                       lambda step: 1.0, seed=0)

    def stop(epoch):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_epochs(t, x, y, Plan(1, 16, checkpoint_steps=2), on_checkpoint=stop)
    assert t.progress is None and t.steps == 2
    run_epochs(t, x, y, Plan(1, 16))
    assert t.steps == 6 and len(t.history) == 1  # a whole epoch of 4 steps
