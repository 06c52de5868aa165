"""`mnist-cnn predict` and `mnist-cnn serve` through main([...]): inputs, output, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_cnn.checkpoint import save_model
from mnist_cnn.cli import main
from mnist_cnn.model import build_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run with an untrained model: enough to test the command's plumbing quickly."""
    run_dir = tmp_path_factory.mktemp("runs") / "untrained"
    save_model(run_dir, build_model("lesson", seed=0), {"dataset": "mnist", "metrics": {}})
    return run_dir


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, x in (("a.png", 100), ("b.jpg", 150)):
        img = Image.new("L", (300, 300), 255)
        ImageDraw.Draw(img).line([(x, 50), (x, 250)], fill=0, width=16)
        img.convert("RGB").save(folder / name)
    (folder / "notes.txt").write_text("not an image, and not listed")
    return folder


def test_folder_json_and_saved_inputs(run, images, tmp_path, capsys):
    out = tmp_path / "seen"
    assert main(["predict", str(run), str(images), "--json", "--top-k", "2",
                 "--save-preprocessed", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"].rsplit("/", 1)[1] for r in rows] == ["a.png", "b.jpg"]
    for r in rows:
        assert 0 <= r["label"] <= 9 and len(r["probabilities"]) == 10 and len(r["top_k"]) == 2
        assert r["error"] is None
        saved = np.asarray(Image.open(r["saved"]))
        assert saved.shape == (28, 28) and saved.max() == 255
    assert sorted(p.name for p in out.iterdir()) == ["0000-a.png", "0001-b.png"]


def test_glob_and_text_output(run, images, capsys):
    assert main(["predict", str(run), str(images / "*.jpg")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(images / "b.jpg") + ": ") and line.count("%") == 3


def test_bad_and_blank_files_are_reported_one_line_each(run, images, tmp_path, capsys):
    fake = tmp_path / "digit.png"
    fake.write_text("#!/bin/sh")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    assert main(["predict", str(run), str(images / "a.png"), str(fake), str(blank)]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1  # the good image is still predicted
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "not an image" in errors[0] and "no digit found" in errors[1]


@pytest.mark.parametrize("args, words", [
    (["/no/such/file.png"], "no such file"),
    (["/no/such/*.png"], "no image files match"),
    (["IMAGES", "--top-k", "0"], "--top-k"),
])
def test_usage_errors(run, images, capsys, args, words):
    args = [str(images) if a == "IMAGES" else a for a in args]
    assert main(["predict", str(run), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def test_serve_refuses_a_missing_run_and_a_bad_port(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 1
    assert "no such run" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
