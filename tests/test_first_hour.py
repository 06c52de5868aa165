"""A newcomer's first hour: no data means one message with every way out, runs remember
their data, a mistyped folder is named, the numbers explain themselves, the words agree,
and the install prints no deprecation banner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import clean_env, cli, run
from mnist_cnn import data
from mnist_cnn.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "keras"
MNIST = data.DATASETS["mnist"]


def fresh_clone(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml in a folder with no ../shared beside it, sharing
    this checkout's ready .venv (pyproject dated older, so make does not reinstall)."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, clone / name)
    os.utime(clone / "pyproject.toml", (0, 0))
    (clone / ".venv").symlink_to(REPO / ".venv")
    return clone


def test_make_run_without_data_fails_fast_with_every_way_to_provide_it(tmp_path):
    clone = fresh_clone(tmp_path)
    result = run(["make", "run"], cwd=clone, env=clean_env(tmp_path / "home"), timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    message = [line for line in result.stderr.splitlines() if "mnist-cnn: error" in line]
    assert len(message) == 1, result.stderr
    for words in [*(spec.name for spec in MNIST.files.values()), "MNIST_CNN_DATA=DIR",
                  "--data-dir DIR", "mnist-cnn data fetch", "mnist-cnn data where",
                  "downloading failed: https://127.0.0.1:9/"]:
        assert words in message[0], words
    assert "Model:" not in result.stdout  # nothing printed before the data was checked
    assert not (clone / "runs").exists()
    # The bound is on CPU time: the wall time on a shared machine depends on its load.
    assert result.cpu_seconds < 10, f"{result.cpu_seconds:.1f} s of CPU"
    print(f"make run without data: {result.seconds:.1f} s wall, {result.cpu_seconds:.1f} s CPU")


def test_a_run_remembers_where_its_data_was(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "--recipe", "fast", "--max-steps", "2", "--data-dir",
                 str(data_dir), "--out", str(run_dir)]) == 0
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["data_dir"] == str(data_dir.absolute())
    result = run(cli("evaluate", run_dir), env=clean_env(tmp_path / "home"))
    assert result.returncode == 0, result.stderr
    assert f"loss {meta['metrics']['test_loss']:.4f}" in result.stdout


def test_evaluate_needs_only_the_test_files(data_dir, trained_run, tmp_path):
    only_test = tmp_path / "t10k"
    only_test.mkdir()
    for split in data.TEST_SPLITS:
        name = MNIST.files[split].name + ".gz"
        shutil.copy(data_dir / "mnist" / name, only_test / name)
    env = clean_env(tmp_path / "home")
    ok = run(cli("evaluate", trained_run, "--data-dir", only_test), env=env)
    assert ok.returncode == 0, ok.stderr
    # With no data anywhere, the message asks for the two test files, not all four.
    run_copy = tmp_path / "copy"
    shutil.copytree(trained_run, run_copy)
    meta = json.loads((run_copy / "model.json").read_text())
    meta.pop("data_dir", None)
    (run_copy / "model.json").write_text(json.dumps(meta))
    missing = run(cli("evaluate", run_copy), env=env)
    line = missing.one_error_line()
    assert "2 data files not found: t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte" in line
    assert "train-images" not in line


@pytest.mark.parametrize("argv", [["train", "--max-steps", "1"], ["data", "where"],
                                  ["evaluate", "RUN"]])
def test_a_mistyped_data_dir_is_an_error_naming_it(data_dir, trained_run, tmp_path, argv):
    argv = [str(trained_run) if a == "RUN" else a for a in argv]
    env = clean_env(tmp_path, MNIST_CNN_DATA=str(data_dir))  # the data IS found elsewhere
    result = run(cli(*argv, "--data-dir", "no/such/folder"), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "--data-dir no/such/folder: no such folder" in result.one_error_line()
    assert "Model:" not in result.stdout and not (tmp_path / "runs").exists()


def test_the_fast_recipe_explains_its_training_loss_and_max_steps(data_dir, tmp_path,
                                                                 capsys):
    assert main(["train", "--recipe", "fast", "--max-steps", "5", "--data-dir",
                 str(data_dir), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "includes label smoothing 0.1" in out and "plain cross-entropy" in out
    assert "Stopped by --max-steps 5 in epoch 1 of 1 (5 of 376 steps)." in out
    assert main(["train", "--max-steps", "3", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "lesson")]) == 0
    out = capsys.readouterr().out
    assert "Stopped by --max-steps 3 in epoch 1 of 5 (3 of 9,375 steps)." in out
    assert "label smoothing" not in out  # the lesson's loss is the plain one


def test_one_test_loss_everywhere_in_bf16(data_dir, tmp_path, monkeypatch, capsys):
    """A bf16 run's test loss is the same number in model.json, evaluate and the report
    (the report once evaluated in fp32). bf16 is forced: torch emulates it on any CPU."""
    from mnist_cnn import device
    from mnist_cnn.report import compute_report

    monkeypatch.setattr(device, "bf16_supported", lambda dev: True)
    run_dir = tmp_path / "run"
    assert main(["train", "--recipe", "fast", "--max-steps", "20", "--device", "cpu",
                 "--data-dir", str(data_dir), "--out", str(run_dir)]) == 0
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["timing"]["precision"] == "bf16"
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["loss"]
    reported = compute_report(run_dir).metrics.loss  # what the report shows
    assert meta["metrics"]["test_loss"] == evaluated == reported
    import torch

    from mnist_cnn.checkpoint import load_model  # evaluated in the layout training holds
    convs = [p for p in load_model(run_dir)[0].parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


def test_help_words_and_descriptions(capsys):
    for command in ("predict", "serve"):
        assert main([command, "--help"]) == 0
        usage = capsys.readouterr().out.split("\n\n")[0]
        assert " RUN" in usage and " run " not in usage, usage
    for command in ("summary", "evaluate", "report", "train", "data", "import-keras"):
        assert main([command, "--help"]) == 0
        description = capsys.readouterr().out.split("\n\n")[1]
        assert len(description) > 40 and not description.startswith(("positional",
                                                                      "options")), command


def test_an_imported_runs_report_says_where_it_came_from(data_dir, tmp_path):
    from mnist_cnn.report import compute_report
    from mnist_cnn.report_html import headline

    run_dir = tmp_path / "imported"
    keras = FIXTURES / "fixture_seed.keras"
    assert main(["import-keras", str(keras), "--out", str(run_dir), "--data-dir",
                 str(data_dir)]) == 0
    rows = dict(headline(compute_report(run_dir)))
    assert rows["source"] == f"imported from {keras}" and "trained" not in rows


def test_the_install_prints_no_deprecation_banner(tmp_path):
    """What pip runs to install the package (setuptools reading pyproject.toml), with
    every warning shown."""
    copy = tmp_path / "pkg"
    copy.mkdir()
    shutil.copy(REPO / "pyproject.toml", copy)
    shutil.copy(REPO / "README.md", copy)
    shutil.copytree(REPO / "src", copy / "src")
    (copy / "meta").mkdir()
    proc = subprocess.run([sys.executable, "-W", "always", "-c",
                           "from setuptools import build_meta as b; "
                           "b.prepare_metadata_for_build_editable('meta')"],
                          cwd=copy, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "eprecat" not in proc.stderr, proc.stderr
