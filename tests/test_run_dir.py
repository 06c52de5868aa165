"""A run directory is written as one unit: never mixed with another run, never clobbered
without --overwrite, one writer at a time, a resume hint that names this run's checkpoint,
and leftovers of a killed writer cleaned up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clirun import clean_env, cli, run, sliced_train
from mnist_cnn import checkpoint
from mnist_cnn.cli import main
from mnist_cnn.config import TrainConfig, planned_steps

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "keras"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _train(data_dir, out, *flags) -> int:
    return main(["train", "--recipe", "fast", "--max-steps", "2", "--device", "cpu",
                 "--data-dir", str(data_dir), "--out", str(out), *flags])


def _staged(run: Path) -> Path:
    return run.parent / f".{run.name}.partial"


# ---------------------------------------------------------------- refusals and --overwrite

def test_an_existing_run_is_refused_and_overwrite_replaces_it_whole(data_dir, tmp_path,
                                                                   capsys):
    run_dir = tmp_path / "lesson"
    assert _train(data_dir, run_dir) == 0
    (run_dir / "report").mkdir()
    (run_dir / "report" / "index.html").write_text("stale numbers")
    before = _files(run_dir)
    capsys.readouterr()
    assert _train(data_dir, run_dir) == 2
    line = _one_line(capsys)
    assert f"{run_dir} already holds a run" in line and "--overwrite" in line
    assert _files(run_dir) == before
    assert _train(data_dir, run_dir, "--max-steps", "3", "--overwrite") == 0
    assert not (run_dir / "report").exists()  # the old run went as a whole, report and all
    assert json.loads((run_dir / "model.json").read_text())["timing"]["steps"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson"]  # no lock, no staging


def test_a_folder_of_the_users_files_is_refused(data_dir, tmp_path, capsys):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "summary.txt").write_text("my summary")
    (mine / "model.json").write_text('{"my": "model"}')
    assert _train(data_dir, mine) == 2
    assert "is not empty and is not a run (it holds model.json, summary.txt)" in \
        _one_line(capsys)
    assert _files(mine) == {"model.json": b'{"my": "model"}', "summary.txt": b"my summary"}


def test_import_keras_refuses_an_existing_run(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    keras = FIXTURES / "fixture_seed.keras"
    argv = ["import-keras", str(keras), "--out", str(run_dir), "--data-dir", str(data_dir)]
    assert main(argv) == 0
    (run_dir / "report").mkdir()
    before = _files(run_dir)
    capsys.readouterr()
    assert main(argv) == 2
    assert "already holds a run" in _one_line(capsys) and _files(run_dir) == before
    assert main([*argv, "--overwrite"]) == 0 and not (run_dir / "report").exists()


def test_resume_with_out_writes_the_other_folder(data_dir, tmp_path, capsys):
    first, other = tmp_path / "first", tmp_path / "other"
    assert _train(data_dir, first) == 0
    before = _files(first)
    assert main(["train", "--resume", str(first), "--out", str(other),
                 "--data-dir", str(data_dir)]) == 0
    assert _files(first) == before
    assert (other / "model.json").is_file() and (other / checkpoint.STATE).is_file()
    assert "Saved the run to " + str(other) in capsys.readouterr().out


# ---------------------------------------------------------------- the folder itself

def test_an_out_that_is_a_file_fails_before_training(data_dir, tmp_path):
    (tmp_path / "afile").write_text("mine")
    result = run(cli("train", "--out", "afile"), cwd=tmp_path,
                 env=clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir)))
    assert result.returncode == 1
    assert "afile: exists and is not a folder" in result.one_error_line()
    assert result.stdout == "" and (tmp_path / "afile").read_text() == "mine"


@pytest.fixture()
def small_mount(tmp_path):
    """Mount a tmpfs (options as asked) at tmp_path/mnt; needs root (CI and this machine
    run as root). Unmounted afterwards."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}): not tested")
        mounted.append(point)
        return point
    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_read_only_folder_fails_before_training(data_dir, tmp_path, small_mount):
    point = small_mount("ro,size=1m")
    result = run(cli("train", "--out", point / "run"), cwd=tmp_path,
                 env=clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir)))
    assert result.returncode == 1 and "Read-only file system" in result.one_error_line()
    assert "Epoch" not in result.stdout


def test_a_full_disk_is_one_line(data_dir, tmp_path, small_mount):
    point = small_mount("size=300k")
    result = run(sliced_train("--recipe", "fast", "--out", point / "run"), cwd=tmp_path,
                 env=clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir)))
    line = result.one_error_line()
    assert result.returncode == 1 and "No space left on device" in line, line
    assert list(point.iterdir()) == []  # the staging folder and the lock are gone


def test_a_second_writer_is_refused(data_dir, tmp_path, capsys):
    from mnist_cnn.staging import RunFolder

    with RunFolder(tmp_path / "run"):
        assert _train(data_dir, tmp_path / "run") == 1
    assert f"is being written by another mnist-cnn (pid {os.getpid()})" in _one_line(capsys)
    assert not (tmp_path / ".run.lock").exists()


def test_two_trainings_into_one_folder_at_once(data_dir, tmp_path):
    env = clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir))
    cmd = sliced_train("--epochs", "2", "--out", tmp_path / "run", n=4096)
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 1], outcomes
    assert "is being written by another mnist-cnn" in outcomes[1][1]


def test_leftovers_of_a_killed_writer_are_cleaned_up(tmp_path):
    from mnist_cnn.staging import RunFolder

    target = tmp_path / "run"
    (target / "checkpoint").mkdir(parents=True)
    (target / "model.json").write_text("{}")
    (target / "model.safetensors").write_text("")
    stale = [target / ".model.json.abcd1234.tmp", target / "checkpoint" / ".state.pt.x1y2z3w4.tmp"]
    for path in stale:
        path.write_text("half")
    keep = target / ".hidden-user-file"
    keep.write_text("mine")
    with RunFolder(target):
        assert not any(p.exists() for p in stale) and keep.exists()
    # A swap killed between its two renames: the old run set aside, no new one in place.
    os.rename(target, tmp_path / ".run.old")
    with RunFolder(target):
        assert (target / "model.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_hidden_names_stay_under_the_name_limit(tmp_path):
    from mnist_cnn.errors import OutputError
    from mnist_cnn.staging import RunFolder

    target = tmp_path / ("r" * 250)
    with RunFolder(target) as folder:
        folder.start()
        folder.staging.joinpath("model.json").write_text("{}")
        folder.commit()
    assert (target / "model.json").is_file()
    with pytest.raises(OutputError, match="too long"):
        RunFolder(tmp_path / ("r" * 300))


# ---------------------------------------------------------------- interruptions

def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {path} after {seconds} s"
        time.sleep(0.02)


def _old_run(data_dir, run_dir: Path) -> dict[str, bytes]:
    assert _train(data_dir, run_dir) == 0
    (run_dir / "report").mkdir()
    return _files(run_dir)


def test_ctrl_c_with_overwrite_keeps_the_old_run_and_names_this_runs_checkpoint(
        data_dir, tmp_path):
    run_dir = tmp_path / "run"
    old = _old_run(data_dir, run_dir)
    env = clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir))
    proc = subprocess.Popen(sliced_train("--epochs", "3", "--out", run_dir, "--overwrite"),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    _wait_for(_staged(run_dir) / checkpoint.STATE, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    assert f"is saved in {_staged(run_dir)}; {run_dir} keeps the earlier run" in err
    assert f"train --resume {run_dir}" in err
    assert _files(run_dir) == old  # the old run, untouched
    state = checkpoint.load_state(_staged(run_dir))
    assert state.config.epochs == 3  # this run's checkpoint, not the old one's
    done = run(sliced_train("--resume", run_dir), env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads((run_dir / "model.json").read_text())["config"]["epochs"] == 3
    assert not (run_dir / "report").exists() and not _staged(run_dir).exists()


def test_sigkill_after_the_first_checkpoint_never_mixes_runs(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    old = _old_run(data_dir, run_dir)
    env = clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir))
    proc = subprocess.Popen(sliced_train("--epochs", "3", "--out", run_dir, "--overwrite"),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(_staged(run_dir) / checkpoint.STATE, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert _files(run_dir) == old
    refused = run(cli("train", "--out", run_dir), env=env)
    assert refused.returncode == 2
    assert f"holds an interrupted run (checkpoint in {_staged(run_dir)})" in \
        refused.one_error_line()
    done = run(sliced_train("--resume", run_dir), env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads((run_dir / "model.json").read_text())["config"]["epochs"] == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".run")) == []


def test_ctrl_c_inside_the_only_epoch_leaves_a_checkpoint_to_resume(data_dir, tmp_path):
    """The fast recipe is less than one epoch: checkpoints inside it make Ctrl-C resumable."""
    steps = planned_steps(TrainConfig(recipe="fast", batch_size=32).resolved_recipe(), 8192)
    assert steps == 205  # 0.8 of the 256 steps of 32 images
    run_dir = tmp_path / "fast"
    env = clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir))
    cmd = sliced_train("--recipe", "fast", "--batch-size", "32", "--device", "cpu",
                       "--out", run_dir, n=8192, checkpoint_seconds=0.3)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    _wait_for(_staged(run_dir) / checkpoint.STATE, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    state = checkpoint.load_state(run_dir)  # moved into place: the folder was new
    assert state.epoch == 0 and 0 < state.progress["step"] < steps
    assert f"(epoch 1, step {state.progress['step']}) is saved in {run_dir}." in err
    done = run(sliced_train("--resume", run_dir, n=8192), env=env)
    assert done.returncode == 0, done.stderr
    assert "Epoch 1/1" in done.stdout and len(checkpoint.read_history(run_dir)) == 1
    assert checkpoint.load_model(run_dir)[1].timing.steps == steps
