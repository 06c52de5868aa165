"""`mnist-cnn sweep`: the search-space file, and real studies on real MNIST with tiny
trials (a few steps each) run by two worker processes sharing a journal file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_cnn import sweep, sweep_results
from mnist_cnn.checkpoint import load_model
from mnist_cnn.errors import UsageError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sweep"
TINY = {"recipe": "fast", "lr": {"low": 0.001, "high": 0.01, "log": True},
        "batch_size": [32, 64], "arch": ["lesson", "lesson-pool3"], "max_steps": 8}


def test_the_example_space_and_its_architecture_file():
    space = sweep.read_space(EXAMPLES / "space.json")
    assert space.ranges["lr"]["log"] and space.choices["batch_size"] == [64, 128, 256]
    wide = space.choices["arch"][2]
    assert Path(wide).is_absolute() and Path(wide).exists()  # found beside the space file
    assert sweep.config_of({**space.fixed, "arch": wide}).arch.name == "wide"


@pytest.mark.parametrize("bad, words", [
    ({"learning_rate": 0.1}, "unknown search-space keys"),
    ({"lr": {"low": 0.1, "high": 0.01}}, "L <= H"),
    ({"lr": {"low": 0, "high": 0.01, "log": True}}, "low > 0"),
    ({"batch_size": []}, "empty list"),
    ({"batch_size": [32, 0]}, "--batch-size"),
    ({"validation_split": 0}, "never the test set"),
    ({"validation_split": [0.1, 0.2]}, "one fixed fraction"),
    ({"arch": ["lesson", "nope"]}, "unknown architecture"),
    ([1, 2], "JSON object"),
])
def test_bad_spaces_are_refused_with_a_reason(bad, words):
    with pytest.raises(UsageError, match=words):
        sweep.Space.from_dict(bad)


def test_a_trial_draws_within_the_space():
    import optuna

    space = sweep.Space.from_dict(TINY)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        drawn = space.suggest(study.ask())
        assert 0.001 <= drawn["lr"] <= 0.01 and drawn["batch_size"] in (32, 64)
        cfg = sweep.config_of(drawn)
        assert cfg.validation_split == pytest.approx(1 / 6) and cfg.max_steps == 8


def _sweep_cmd(space: Path, out: Path, trials: int = 6) -> list[str]:
    return [sys.executable, "-m", "mnist_cnn", "sweep", str(space), "--trials", str(trials),
            "--workers", "2", "--out", str(out), "--ensemble-top", "3"]


def _check_study(out: Path, complete: int) -> list[sweep_results.TrialRow]:
    rows = sweep_results.results(sweep.Sweep(sweep.Space.from_dict(TINY), out, complete))
    done = [r for r in rows if r.state == "COMPLETE"]
    assert len(done) == complete, rows
    for row in done:
        model, meta = load_model(row.run)  # every trial is an ordinary run
        assert meta.config.validation_split == pytest.approx(1 / 6)
        assert meta.metrics["val_accuracy"] == pytest.approx(row.val_accuracy)
        assert meta.metrics["test_accuracy"] == pytest.approx(row.test_accuracy)
    return rows


@pytest.mark.slow
def test_six_trials_two_workers_sharing_a_journal(tmp_path, data_dir):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY))
    out = tmp_path / "study"
    done = subprocess.run(_sweep_cmd(space, out), capture_output=True, text=True,
                          timeout=600, env={**os.environ, "MNIST_CNN_DATA": str(data_dir)})
    assert done.returncode == 0, done.stderr
    rows = _check_study(out, 6)
    assert {r.params["arch"] for r in rows} <= {"lesson", "lesson-pool3"}
    assert "val acc" in done.stdout and "test acc" in done.stdout
    assert len((out / "trials.csv").read_text().splitlines()) == 7
    best = (out / "top.txt").read_text().splitlines()
    assert best == [r.run for r in rows[:3]]  # best validation accuracy first
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _workers(parent: int) -> list[int]:
    found = []
    for child in Path("/proc").iterdir():
        try:
            stat = (child / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == parent and b"spawn" in (child / "cmdline").read_bytes():
                found.append(int(child.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.slow
def test_a_killed_worker_leaves_a_study_that_continues(tmp_path, data_dir):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({**TINY, "max_steps": 40}))
    out = tmp_path / "study"
    env = {**os.environ, "MNIST_CNN_DATA": str(data_dir)}
    proc = subprocess.Popen(_sweep_cmd(space, out), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("trials/*/model.json")):  # a trial has finished
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.3)
    victims = _workers(proc.pid)
    assert len(victims) == 2
    os.kill(victims[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1 and "sweep worker" in err and "killed" in err, err
    rows = sweep_results.results(sweep.Sweep(sweep.Space.from_dict(TINY), out, 6))
    assert "RUNNING" not in {r.state for r in rows}  # the dead worker's trial is failed
    for row in rows:
        if row.state == "COMPLETE":
            load_model(row.run)
    again = subprocess.run(_sweep_cmd(space, out), env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    _check_study(out, 6)
