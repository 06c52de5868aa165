"""ONNX export: onnxruntime computes torch's probabilities (1e-5 on all 10,000 MNIST test
images) for the lesson's trained network and a custom one; the file is checked,
self-contained, batch-free and says what its input and output are."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from export_models import custom_net
from mnist_cnn.checkpoint import load_model
from mnist_cnn.export_onnx import INPUT_NAME, OUTPUT_NAME, is_onnx_model, write_onnx
from mnist_cnn.predict import Predictor

onnx = pytest.importorskip("onnx", reason="the [onnx] extra (in [dev]) is not installed")
ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")

TOLERANCE = 1e-5


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ort_probabilities(session, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    x = (images.astype(np.float32) / 255)[:, None]  # (N, 1, 28, 28)
    return np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: x[i:i + batch]})[0]
                           for i in range(0, len(x), batch)])


@pytest.fixture(scope="module")
def custom(mnist):
    (x_train, y_train), _ = mnist
    return custom_net(x_train[:6400], y_train[:6400])


@pytest.mark.parametrize("which", ["lesson", "custom"])
def test_onnxruntime_matches_torch_on_the_whole_test_set(which, trained_run, custom, mnist,
                                                         tmp_path):
    net = load_model(trained_run)[0] if which == "lesson" else custom
    path = tmp_path / f"{which}.onnx"
    write_onnx(net, path)
    _, (x_test, y_test) = mnist
    ours = Predictor(net, {}).probabilities(x_test)
    theirs = _ort_probabilities(_session(path), x_test)
    assert theirs.shape == (10_000, 10) and theirs.dtype == np.float32
    assert np.abs(theirs - ours).max() <= TOLERANCE
    np.testing.assert_allclose(theirs.sum(1), 1, atol=1e-5)  # softmax is in the graph
    assert (theirs.argmax(1) == y_test).mean() > (0.98 if which == "lesson" else 0.85)


def test_custom_network_exercises_what_it_claims(custom):
    """The custom network's moving statistics moved far from their (0, 1) start, and its
    layers include every setting the lesson's network lacks."""
    state = custom.state_dict()
    for name in ("batch_normalization", "batch_normalization_1"):
        assert state[f"layers.{name}.moving_mean"].abs().max() > 0.01
        assert (state[f"layers.{name}.moving_variance"] - 1).abs().min() > 0.3
    kinds = {type(layer).__name__ for layer in custom.arch.layers}
    assert {"AveragePooling2D", "BatchNormalization", "Dropout"} <= kinds
    conv = custom.arch.layers[0]
    assert conv.strides == (2, 2) and conv.padding == "same"


def test_the_file_is_checked_self_contained_and_describes_itself(trained_run, tmp_path):
    net, meta = load_model(trained_run)
    path = tmp_path / "model.onnx"
    write_onnx(net, path, {"test_accuracy": meta.metrics["test_accuracy"]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no sidecar
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in proto.graph.initializer)
    (image,), (probs,) = proto.graph.input, proto.graph.output
    assert (image.name, probs.name) == (INPUT_NAME, OUTPUT_NAME)
    dims = image.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    assert image.doc_string and probs.doc_string and INPUT_NAME in proto.doc_string
    props = {p.key: p.value for p in proto.metadata_props}
    assert {"input", "output", "architecture", "producer", "test_accuracy"} <= set(props)
    assert json.loads(props["architecture"]) == net.arch.to_dict()
    assert float(props["test_accuracy"]) == meta.metrics["test_accuracy"]


@pytest.mark.parametrize("batch", [1, 7])
def test_any_batch_size_runs(trained_run, tmp_path, batch):
    net = load_model(trained_run)[0]
    write_onnx(net, tmp_path / "m.onnx")
    x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
    out = _session(tmp_path / "m.onnx").run(None, {INPUT_NAME: x})[0]
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    assert out.shape == (batch, 10)
    assert np.abs(out - ref).max() <= TOLERANCE


def test_export_leaves_the_callers_network_as_it_was(trained_run, tmp_path):
    net = load_model(trained_run)[0].to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    write_onnx(net, tmp_path / "m.onnx")
    assert not net.training
    assert net.layers["conv2d"].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_is_onnx_model_tells_models_from_other_files(trained_run, tmp_path):
    write_onnx(load_model(trained_run)[0], tmp_path / "m.onnx")
    assert is_onnx_model(tmp_path / "m.onnx")
    for name, content in [("empty.onnx", b""), ("text.onnx", b"hello, world\n"),
                          ("zip.onnx", b"PK\x03\x04" + bytes(100))]:
        (tmp_path / name).write_bytes(content)
        assert not is_onnx_model(tmp_path / name)
    assert not is_onnx_model(tmp_path)
