"""The README's first-hour walkthrough, run command by command as a newcomer would.

A fresh folder (the Makefile and pyproject.toml beside this checkout's ready .venv, no
../shared), an empty home, and a local HTTPS mirror serving the real MNIST files in place
of the internet: `make run` downloads them into the cache like a first run anywhere. The
README says what the test changes: shorter training, `serve` on a free port (started,
asked for its page and API, stopped), and `my7.png` drawn here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from clirun import clean_env, run
from digits import render_digit
from mirror_server import TRUSTED_CERT, Mirror
from mnist_cnn import data
from test_first_hour import REPO, fresh_clone

MAKE_FLAGS = "--max-steps 300"  # as the README says: shortened training, nothing else
TRAIN_FLAGS = ["--max-steps", "100"]


def walkthrough() -> list[list[str]]:
    """The commands of the README block marked as the walkthrough, comments dropped."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough:[^>]*-->\s*```\n(.*?)```", readme, re.S)
    assert block, "README.md has no walkthrough block"
    return [words for line in block.group(1).splitlines()
            if (words := shlex.split(line, comments=True))]


def test_the_walkthrough_names_the_five_steps():
    commands = [" ".join(c) for c in walkthrough()]
    assert commands[0] == "make run" and commands[1] == "source .venv/bin/activate"
    for words in ("evaluate runs/lesson", "report runs/lesson", "--validation-split 0.1",
                  "serve runs/lesson", "predict runs/lesson my7.png"):
        assert any(words in c for c in commands), words


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    """Start the server, check its page and API answer, stop it with Ctrl-C."""
    port = _free_port()
    proc = subprocess.Popen([*argv, "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, base = time.monotonic() + 120, f"http://127.0.0.1:{port}"
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "serve did not get ready in 120 s"
                time.sleep(0.2)
        with urllib.request.urlopen(f"{base}/", timeout=10) as r:
            assert r.status == 200 and b"<canvas" in r.read()
        with urllib.request.urlopen(f"{base}/api/model", timeout=10) as r:
            assert "Total params: 93,322" in json.loads(r.read())["summary"]
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    assert "Traceback" not in output, output


@pytest.fixture()
def newcomer(tmp_path, data_dir, monkeypatch):
    """A fresh clone, an empty home, and the internet replaced by a local mirror."""
    files = {f"mnist/{spec.name}.gz": (data_dir / "mnist" / f"{spec.name}.gz").read_bytes()
             for spec in data.DATASETS["mnist"].files.values()}
    with Mirror(files) as mirror:
        env = clean_env(tmp_path / "home", MNIST_CNN_MIRRORS=mirror.base("good"),
                        SSL_CERT_FILE=str(TRUSTED_CERT), TRAIN_FLAGS=MAKE_FLAGS)
        yield fresh_clone(tmp_path), env, mirror


def test_the_readme_walkthrough_runs_command_by_command(newcomer):
    clone, env, mirror = newcomer
    render_digit(7, np.random.default_rng(7)).image.save(clone / "my7.png")
    for argv in walkthrough():
        if argv[0] == "source":  # what activate does for the commands that follow
            env = {**env, "VIRTUAL_ENV": str(clone / ".venv"),
                   "PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"}
            continue
        if argv[:2] == ["mnist-cnn", "serve"]:
            _serve(argv, env, clone)
            continue
        if argv[:2] == ["mnist-cnn", "train"]:
            argv = [*argv, *TRAIN_FLAGS]
        result = run(argv, env=env, cwd=clone, timeout=600)
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        _check(argv, result.stdout, clone)
    assert len(mirror.requests) == 4  # downloaded once by make run, found in the cache after


def _check(argv: list[str], out: str, clone: Path) -> None:
    """What each step promises to show."""
    command = " ".join(argv)
    if command == "make run":
        assert 'Model: "sequential"' in out and "Epoch 1/5" in out
        assert "Saved the run to runs/lesson/" in out
    elif "evaluate" in command:
        assert "mnist test set, 10000 images" in out
    elif "report runs/lesson" in command:
        assert (clone / "runs/lesson/report/index.html").is_file()
    elif "--validation-split" in command:
        history = (clone / "runs/fast/history.csv").read_text()
        assert "val_loss" in history and (clone / "runs/fast/report/curves.png").is_file()
    elif "predict" in command:
        assert out.startswith("my7.png: ")
