"""The "not sure" line travels from `mnist-cnn report` to the page: model.json's optional
"calibration" section (validated, absent until a report), written by the report next to the
weights it was chosen for, and handed to the page by model.js (export and serve), which says
when there is none or when it was chosen for other weights."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from mnist_cnn import checkpoint
from mnist_cnn.checkpoint import CalibrationMeta, RunMeta, save_model, weights_digest
from mnist_cnn.errors import MnistCnnError, ModelFileError
from mnist_cnn.model import build_model

GOOD = {"not_sure_below": 0.8, "target_accuracy": 0.9, "temperature": 0.44,
        "fitted_on": "validation", "images": 6000, "weights": "ab" * 32}


def model_payload(model, meta) -> dict:
    from mnist_cnn.export_web import model_script

    text = model_script(model, meta)
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


@pytest.fixture
def run(tmp_path):
    run = tmp_path / "run"
    save_model(run, build_model("lesson", seed=0), {"dataset": "mnist"})
    return run


def test_no_section_until_a_report_and_a_round_trip(run):
    assert "calibration" not in json.loads((run / "model.json").read_text())  # unchanged format
    meta = checkpoint.read_meta(run)
    assert meta.calibration is None
    with_line = dataclasses.replace(meta, calibration=CalibrationMeta.from_dict(GOOD))
    checkpoint.save_meta(run, with_line)
    assert json.loads((run / "model.json").read_text())["calibration"] == GOOD
    assert checkpoint.read_meta(run) == with_line
    assert checkpoint.load_model(run)[1].calibration.not_sure_below == 0.8


@pytest.mark.parametrize("change", [
    {"not_sure_below": 1.5}, {"not_sure_below": "0.8"}, {"target_accuracy": 1.0},
    {"temperature": 0}, {"fitted_on": "test"}, {"images": 0}, {"images": True},
    {"weights": "abc"}, {"extra": 1}, {"weights": None},
])
def test_a_bad_section_is_refused_by_name(change):
    data = {**RunMeta(build_model("lesson").arch).to_dict(), "calibration": {**GOOD, **change}}
    with pytest.raises(ModelFileError, match="calibration"):
        RunMeta.from_dict(data)


def test_the_digest_follows_the_numbers_not_the_file():
    model = build_model("lesson", seed=0)
    state = model.state_dict()
    assert weights_digest(state) == weights_digest({k: v.clone() for k, v in reversed(
        state.items())})
    changed = {k: v.clone() for k, v in state.items()}
    changed["layers.dense.bias"][0] += 1e-6
    assert weights_digest(changed) != weights_digest(state)


def test_model_js_carries_the_line_only_for_its_own_weights(run):
    model, meta = checkpoint.load_model(run)
    assert model_payload(model, meta)["calibration"] is None
    mine = CalibrationMeta.from_dict({**GOOD, "weights": weights_digest(model.state_dict())})
    payload = model_payload(model, dataclasses.replace(meta, calibration=mine))
    assert payload["calibration"] == {"not_sure_below": 0.8, "target_accuracy": 0.9,
                                      "fitted_on": "validation", "images": 6000}
    with torch.no_grad():
        model.layers["dense"].bias[0] += 0.01  # retrained, say, without a new report
    stale = model_payload(model, dataclasses.replace(meta, calibration=mine))
    assert stale["calibration"] == {"stale": True}


def test_the_report_writes_the_line_into_model_json(written_report, trained_run):
    saved = checkpoint.read_meta(trained_run).calibration
    report = json.loads(written_report.calibration.read_text())
    assert written_report.meta == trained_run / "model.json"
    assert saved.not_sure_below == report["not_sure_below"]["raw"]
    assert saved.temperature == report["temperature"]
    assert (saved.fitted_on, saved.images) == (report["fitted_on"]["source"],
                                                report["fitted_on"]["images"])
    assert saved.target_accuracy == report["not_sure_below"]["target_accuracy"]
    model, meta = checkpoint.load_model(trained_run)
    assert saved.weights == weights_digest(model.state_dict())
    assert model_payload(model, meta)["calibration"]["not_sure_below"] == saved.not_sure_below


def test_a_run_folder_that_cannot_be_written_is_one_clear_error(run, monkeypatch):
    from types import SimpleNamespace

    from mnist_cnn import report

    def refuse(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint, "atomic_write_text", refuse)
    fake = SimpleNamespace(weights="ab" * 32, trust=SimpleNamespace(
        for_page=lambda weights: CalibrationMeta.from_dict({**GOOD, "weights": weights})))
    with pytest.raises(MnistCnnError, match=r"the report is written, but .*\(Permission denied\)"):
        report._keep_calibration(run, fake)
