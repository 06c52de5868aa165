"""Run directories: save -> load gives identical logits; damage gives a clear error."""

from __future__ import annotations

import json

import pytest
import torch

from mnist_cnn import checkpoint
from mnist_cnn.errors import ModelFileError
from mnist_cnn.model import build_model


@pytest.fixture()
def saved(tmp_path):
    model = build_model("lesson", seed=4).eval()
    checkpoint.save_model(tmp_path, model, {"dataset": "mnist"})
    return tmp_path, model


def test_save_load_gives_identical_logits(saved):
    run_dir, model = saved
    loaded, meta = checkpoint.load_model(run_dir)
    x = torch.rand(8, 1, 28, 28)
    model.to(memory_format=checkpoint.INFERENCE_LAYOUT)  # the same kernels, so the same bits
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta.dataset == "mnist" and meta.architecture.name == "lesson"


def test_no_temporary_files_are_left(saved):
    run_dir, _ = saved
    assert sorted(p.name for p in run_dir.iterdir()) == ["model.json", "model.safetensors"]


def test_missing_run_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no such run directory"):
        checkpoint.load_model(tmp_path / "nope")


def test_truncated_weights(saved):
    run_dir, _ = saved
    path = run_dir / checkpoint.WEIGHTS
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="damaged weights"):
        checkpoint.load_model(run_dir)


def test_weights_of_another_architecture(saved, tmp_path):
    run_dir, _ = saved
    other = tmp_path / "other"
    checkpoint.save_model(other, build_model("lesson-pool3"), {})
    (run_dir / checkpoint.WEIGHTS).write_bytes((other / checkpoint.WEIGHTS).read_bytes())
    with pytest.raises(ModelFileError, match="float32"):
        checkpoint.load_model(run_dir)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"dataset": "mnist"}',
                                  '{"architecture": {"layers": "x"}}'])
def test_damaged_model_json(saved, text):
    run_dir, _ = saved
    (run_dir / checkpoint.META).write_text(text)
    with pytest.raises(ModelFileError):
        checkpoint.load_model(run_dir)


def test_json_that_names_an_unknown_layer(saved):
    run_dir, _ = saved
    meta = json.loads((run_dir / checkpoint.META).read_text())
    meta["architecture"]["layers"][0]["type"] = "Lambda"
    (run_dir / checkpoint.META).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="unknown layer"):
        checkpoint.load_model(run_dir)


def test_history_round_trip(tmp_path):
    history = [{"epoch": 1.0, "loss": 0.5, "accuracy": 0.9}]
    checkpoint.write_history(tmp_path, history)
    assert checkpoint.read_history(tmp_path) == history


def test_saved_files_have_ordinary_permissions(saved):
    import os
    import stat

    run_dir, _ = saved
    mask = os.umask(0o022)
    os.umask(mask)
    for path in run_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path.name
