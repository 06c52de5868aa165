"""`mnist-cnn export` and the model card: files and cards written whole, beside each other;
every bad input (run, format, --out) one line and a non-zero exit, with nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnist_cnn.checkpoint import RunMeta
from mnist_cnn.cli import main
from mnist_cnn.model import build_model
from mnist_cnn.modelcard import is_model_card, model_card
from mnist_cnn.run import write_run

pytest.importorskip("onnx", reason="the [onnx] extra (in [dev]) is not installed")
pytest.importorskip("h5py", reason="the [keras] extra (in [dev]) is not installed")

ACCURACY = 0.9876


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run of the lesson's network with initial weights (the export does not care)."""
    run_dir = tmp_path_factory.mktemp("runs") / "lesson"
    net = build_model("lesson", seed=0).eval()
    write_run(run_dir, net, RunMeta(architecture=net.arch, recipe="lesson",
                                    metrics={"test_accuracy": ACCURACY, "test_loss": 0.04}))
    return run_dir


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mnist-cnn: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("fmt", ["onnx", "keras"])
def test_export_writes_the_file_and_its_card(fmt, run, data_dir, tmp_path, capsys):
    out = tmp_path / "sub" / f"digits.{fmt}"
    assert main(["export", str(run), "--format", fmt, "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    card = tmp_path / "sub" / f"digits.{fmt}.md"
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name, card.name]
    text = card.read_text()
    assert text.startswith(f"---\nlibrary_name: {fmt}\n") and is_model_card(card)
    assert f"value: {ACCURACY}" in text and repr(out.name) in text
    printed = capsys.readouterr().out
    assert str(out) in printed and str(card) in printed
    # An earlier export of the same format is replaced.
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0


def test_the_card_has_every_section_and_real_per_class_accuracy(trained_run, data_dir):
    text = model_card(trained_run, data_dir, export_format="onnx")
    front, body = text.split("\n---\n", 1)
    for key in ("library_name: onnx", "tags:", "datasets:", "metrics:", "model-index:",
                "- type: accuracy"):
        assert key in front
    for section in ("## Model details", "## Training data and recipe", "## Evaluation",
                    "## Intended use", "## Limitations", "## How to load it"):
        assert section in body
    assert "| conv2d (Conv2D) | (None, 26, 26, 32) | 320 |" in body
    assert 'There is no "not a digit" class' in body and "20x20 box" in body
    rows = [line for line in body.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == 10
    accuracies = [float(line.rsplit("|", 2)[1].strip(" %")) for line in rows]
    assert min(accuracies) > 95 and max(accuracies) <= 100


def test_the_card_says_when_the_test_set_is_absent(run, tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_CNN_DATA", raising=False)
    text = model_card(run, tmp_path)  # an empty folder; nothing is downloaded
    assert "Per-class accuracy is not included: the mnist test set was not found" in text
    assert f"value: {ACCURACY}" in text


@pytest.mark.parametrize("args, code, words", [
    (["--format", "tflite", "--out", "m.tflite"], 2, "unknown format 'tflite'"),
    (["--format", "onnx", "--out", "model.txt"], 2, "writes a .onnx file"),
    (["--format", "keras", "--out", "model.onnx"], 2, "writes a .keras file"),
])
def test_bad_formats_and_suffixes_are_one_line(run, tmp_path, capsys, args, code, words):
    args = [*args[:-1], str(tmp_path / args[-1])]
    assert main(["export", str(run), *args]) == code
    assert words in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_run_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "notarun").mkdir()
    for run in (tmp_path / "missing", tmp_path / "notarun"):
        assert main(["export", str(run), "--format", "onnx", "--out",
                     str(tmp_path / "m.onnx")]) == 1
        assert str(run) in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notarun"]


def test_an_existing_file_that_is_not_an_export_is_never_replaced(run, tmp_path, capsys):
    stranger = tmp_path / "notes.onnx"
    stranger.write_text("my notes")
    assert main(["export", str(run), "--format", "onnx", "--out", str(stranger)]) == 2
    assert "exists and is not a .onnx model" in _one_error_line(capsys)
    readme = tmp_path / "README.keras.md"
    readme.write_text("# my readme\n")
    assert main(["export", str(run), "--format", "keras", "--out",
                 str(tmp_path / "README.keras")]) == 2
    assert "is not a model card" in _one_error_line(capsys)
    assert stranger.read_text() == "my notes" and readme.read_text() == "# my readme\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.keras.md", "notes.onnx"]


def test_an_unwritable_out_is_one_line(run, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["export", str(run), "--format", "onnx", "--out",
                 str(tmp_path / "file" / "m.onnx")]) == 2
    assert "is not a folder" in _one_error_line(capsys)
    (tmp_path / "dir.onnx").mkdir()
    assert main(["export", str(run), "--format", "onnx", "--out",
                 str(tmp_path / "dir.onnx")]) == 2
    assert "is a folder" in _one_error_line(capsys)


def test_a_failure_while_exporting_leaves_no_file(run, tmp_path, capsys, monkeypatch):
    import mnist_cnn.export_onnx as export_onnx
    from mnist_cnn.errors import ModelFileError

    def broken(*args, **kwargs):
        raise ModelFileError("the exporter failed")

    monkeypatch.setattr(export_onnx, "onnx_bytes", broken)
    assert main(["export", str(run), "--format", "onnx", "--out",
                 str(tmp_path / "m.onnx")]) == 1
    assert "the exporter failed" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_the_web_folder_gets_its_card_inside(run, data_dir, tmp_path, capsys):
    site = tmp_path / "site"
    assert main(["export", str(run), "--format", "web", "--out", str(site),
                 "--data-dir", str(data_dir)]) == 0
    card = site / "MODEL_CARD.md"
    assert (site / "index.html").is_file() and is_model_card(card)
    assert card.read_text().startswith("---\nlibrary_name: pytorch\n")
    assert str(card) in capsys.readouterr().out
    # Exported again over itself: the folder is an earlier export, card and all.
    assert main(["export", str(run), "--format", "web", "--out", str(site)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_the_installed_command_prints_one_line_not_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnist_cnn", "export", str(tmp_path / "x"),
                           "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "no such run directory" in done.stderr
