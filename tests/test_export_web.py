"""`export_web`: the static folder (page, scripts, model.js with the run's exact weights,
README), its size, and its refusals (bad runs, folders holding other files), with no
half-written folder left behind. The page itself runs in test_browser_export.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import torch

from mnist_cnn import export_web as ew
from mnist_cnn.checkpoint import WEIGHTS, save_model
from mnist_cnn.errors import MnistCnnError, ModelFileError, UsageError
from mnist_cnn.model import ARCHITECTURES, build_model

MAX_EXPORT_BYTES = 2 * 1024 * 1024  # the lesson's model must fit a course website easily


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run of the lesson's architecture with random weights (no training needed)."""
    run = tmp_path / "run"
    save_model(run, build_model(next(iter(ARCHITECTURES)), seed=0), {"dataset": "mnist"})
    return run


def read_model_script(path: Path) -> dict:
    text = path.read_text(encoding="ascii")
    prefix, suffix = "window.MNIST_MODEL = ", ";\n"
    assert text.startswith(prefix) and text.endswith(suffix)
    return json.loads(text[len(prefix):-len(suffix)])


def weights_of(payload: dict) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(base64.b64decode(payload["weights"]))


def test_export_writes_the_page_and_the_exact_weights(run_dir, tmp_path):
    from safetensors.torch import load_file

    out = ew.export_web(run_dir, tmp_path / "site")
    assert out == (tmp_path / "site").resolve()
    assert (out / "index.html").read_bytes() == (ew.WEB_DIR / "index.html").read_bytes()
    for script in ("engine.js", "preprocess.js", "view.js", "app.js", "style.css"):
        assert (out / "static" / script).read_bytes() == (ew.WEB_DIR / script).read_bytes()
    assert (out / "README.txt").read_text().startswith(ew.README_FIRST_LINE)
    payload = read_model_script(out / "model.js")
    assert payload["server"] is False
    assert payload["architecture"] == json.loads((run_dir / "model.json").read_text())[
        "architecture"]
    assert "Total params: 93,322" in payload["summary"]
    exported, saved = weights_of(payload), load_file(str(run_dir / WEIGHTS))
    assert exported.keys() == saved.keys()
    assert all(torch.equal(exported[k], saved[k]) for k in saved)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size < MAX_EXPORT_BYTES, f"{size:,} bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "site"]  # no temporary folder


def test_served_page_gets_the_same_model(run_dir, tmp_path):
    from fastapi.testclient import TestClient

    from mnist_cnn.predict import Predictor
    from mnist_cnn.serve import create_app

    client = TestClient(create_app(Predictor.from_run(run_dir)), base_url="http://127.0.0.1")
    answer = client.get("/model.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    (tmp_path / "served.js").write_text(answer.text, encoding="ascii")
    served = read_model_script(tmp_path / "served.js")
    exported = read_model_script(ew.export_web(run_dir, tmp_path / "site") / "model.js")
    assert served["server"] is True
    assert {k: v for k, v in served.items() if k != "server"} == \
        {k: v for k, v in exported.items() if k != "server"}
    page = client.get("/").text
    assert all(f'src="{src}"' in page for src in ("model.js", "static/engine.js"))


def test_exporting_again_replaces_the_earlier_export(run_dir, tmp_path):
    out = ew.export_web(run_dir, tmp_path / "site")
    (out / "model.js").write_text("stale", encoding="ascii")
    ew.export_web(run_dir, out)
    assert read_model_script(out / "model.js")["architecture"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "site"]


def test_an_empty_folder_is_used(run_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    assert (ew.export_web(run_dir, tmp_path / "empty") / "index.html").is_file()


@pytest.mark.parametrize("damage", ["no run", "no model.json", "bad json", "no weights",
                                    "bad weights"])
def test_bad_run_directories_are_model_file_errors(run_dir, tmp_path, damage):
    if damage == "no run":
        run_dir = tmp_path / "nowhere"
    elif damage == "no model.json":
        (run_dir / "model.json").unlink()
    elif damage == "bad json":
        (run_dir / "model.json").write_text("{", encoding="utf-8")
    elif damage == "no weights":
        (run_dir / WEIGHTS).unlink()
    else:
        (run_dir / WEIGHTS).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(ModelFileError):
        ew.export_web(run_dir, tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_a_folder_with_other_files_is_refused_and_kept(run_dir, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(UsageError, match="other files"):
        ew.export_web(run_dir, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="not a folder"):
        ew.export_web(run_dir, tmp_path / "file")


def test_a_failure_while_writing_leaves_nothing(run_dir, tmp_path, monkeypatch):
    def broken(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ew, "_readme", broken)
    with pytest.raises(MnistCnnError, match="No space left"):
        ew.export_web(run_dir, tmp_path / "site")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_command_line_exports_and_refuses_in_one_line(run_dir, tmp_path, capsys):
    from mnist_cnn.cli import main

    site = tmp_path / "site"
    assert main(["export", str(run_dir), "--format", "web", "--out", str(site)]) == 0
    assert "index.html" in capsys.readouterr().out and (site / "model.js").is_file()
    assert main(["export", str(tmp_path / "nowhere"), "--format", "web", "--out",
                 str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnist-cnn: error: ") and len(err.strip().splitlines()) == 1
    assert main(["export", str(run_dir), "--format", "web", "--out", str(run_dir)]) == 2
    assert "other files" in capsys.readouterr().err
