"""A network of the user's own (a JSON file of layers) through every command: train via the
CLI, evaluate, predict, report, serve, summary, import/export of its weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_cnn.checkpoint import load_model
from mnist_cnn.cli import main

LAYERS = [
    {"type": "Conv2D", "filters": 16, "kernel_size": 5, "strides": 2, "padding": "same",
     "activation": "relu"},
    {"type": "BatchNormalization"},
    {"type": "Conv2D", "filters": 32, "kernel_size": [3, 3], "padding": "same",
     "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
    {"type": "Dropout", "rate": 0.2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 64, "activation": "tanh"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp("custom")
    spec = folder / "my.json"
    spec.write_text(json.dumps(LAYERS))
    run = folder / "run"
    assert main(["train", "--arch", str(spec), "--recipe", "fast", "--data-dir", str(data_dir),
                 "--out", str(run)]) == 0
    return run


@pytest.mark.slow
def test_train_writes_the_custom_architecture(custom_run, capsys):
    model, meta = load_model(custom_run)
    assert meta.architecture.name == "my" and len(model.arch.layers) == len(LAYERS)
    assert model.arch.shapes()[0] == (14, 14, 16) and model.arch.shapes()[4] == (4, 4, 32)
    assert meta.metrics["test_accuracy"] > 0.97
    summary = (custom_run / "summary.txt").read_text()
    assert "batch_normalization (BatchNo (None, 14, 14, 16)" in summary
    assert "Non-trainable params: 32" in summary


@pytest.mark.slow
def test_evaluate_predict_report_on_the_custom_run(custom_run, data_dir, tmp_path, capsys):
    from PIL import Image

    assert main(["evaluate", str(custom_run), "--json", "--data-dir", str(data_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    _, meta = load_model(custom_run)
    assert metrics["accuracy"] == pytest.approx(meta.metrics["test_accuracy"], abs=1e-6)
    from mnist_cnn import data

    _, (x_test, y_test) = data.load_data("mnist", data_dir)
    Image.fromarray(255 - x_test[0]).resize((200, 200)).save(tmp_path / "digit.png")
    assert main(["predict", str(custom_run), str(tmp_path / "digit.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == int(y_test[0])
    assert main(["report", str(custom_run), "--out", str(tmp_path / "report"),
                 "--data-dir", str(data_dir)]) == 0
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"architecture.png", "filters.png", "index.html", "feature_maps_0.png",
            "saliency_mistakes.png", "reliability.png", "robustness.png",
            "calibration.json"} <= names
    html = (tmp_path / "report" / "index.html").read_text()
    assert "average_pooling2d" in html and "batch_normalization" in html


@pytest.mark.slow
def test_serve_describes_the_custom_layers(custom_run):
    from fastapi.testclient import TestClient

    from mnist_cnn.predict import Predictor
    from mnist_cnn.serve import create_app

    client = TestClient(create_app(Predictor.from_run(custom_run)), base_url="http://127.0.0.1")
    info = client.get("/api/model").json()
    assert [layer["kind"] for layer in info["layers"]] == [d["type"] for d in LAYERS]
    assert len(info["conv1_filters"]) == 16 and len(info["conv1_filters"][0]) == 5
    answer = client.post("/api/predict", json={"pixels": [[0] * 28] * 10 + [[255] * 28] * 8
                                               + [[0] * 28] * 10, "activations": True})
    assert answer.status_code == 200
    assert [a["shape"] for a in answer.json()["activations"]][:2] == [[14, 14, 16],
                                                                       [14, 14, 16]]


def test_summary_of_an_arch_file(tmp_path, capsys):
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps({"layers": LAYERS}))
    assert main(["summary", "--arch", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "average_pooling2d (AveragePo (None, 4, 4, 32)" in out and "dense_1 (Dense)" in out


@pytest.mark.slow
def test_bench_on_an_arch_file(tmp_path, data_dir, capsys):
    spec = tmp_path / "small.json"
    spec.write_text(json.dumps([{"type": "Conv2D", "filters": 8, "kernel_size": 3,
                                 "strides": 2, "activation": "relu"},
                                {"type": "Flatten"},
                                {"type": "Dense", "units": 10, "activation": "softmax"}]))
    assert main(["bench", "--arch", str(spec), "--recipes", "fast", "--runs", "1", "--no-peer",
                 "--json", "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recipes"][0]["test_accuracy"][0] > 0.9
