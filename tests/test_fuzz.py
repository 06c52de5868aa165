"""Property-based fuzzing: random and mutated inputs raise only our own errors.

Readers under test: the IDX parser and verified reader, the model-file loader (model.json,
model.safetensors, Architecture.from_dict), the checkpoint loader (bytes and values),
history.csv, the Keras importer (its config and its weight arrays), and the image
preprocessing. Each property: a valid result, or a MnistCnnError subclass; nothing else.
Example counts are per test; MNIST_CNN_FUZZ_SCALE=10 runs ten times more (not in CI).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import tiny_mnist
from mnist_cnn import checkpoint, data, preprocess
from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import ArchitectureError, DataError, ImageError, ModelFileError
from mnist_cnn.model import Architecture, build_model
from mnist_cnn.train import fit

SCALE = float(os.environ.get("MNIST_CNN_FUZZ_SCALE", "1"))
# Examples per test in CI (the sum is recorded in docs/RELIABILITY.md).
EXAMPLES = {"idx": 300, "gz": 150, "arch": 300, "model": 100, "state": 100, "image": 150,
            "array": 100, "state_values": 600, "history": 600, "keras_config": 500,
            "keras_weights": 200}


def fuzz(kind: str):
    return settings(max_examples=int(EXAMPLES[kind] * SCALE), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated(draw, seed: bytes, header: int | None = None) -> bytes:
    """`seed` with 1..6 random edits (bit flips, byte sets, inserts, deletes, truncation),
    biased towards the first `header` bytes where parsers make their decisions."""
    raw = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        end = min(len(raw), header or len(raw))
        pos = draw(st.integers(0, max(end - 1, 0)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "truncate":
            del raw[pos:]
        elif op == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif raw and op == "delete":
            del raw[pos:pos + draw(st.integers(1, 8))]
        elif raw and op == "flip":
            raw[pos] ^= 1 << draw(st.integers(0, 7))
        elif raw:
            raw[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
    return bytes(raw)


def _idx(dims, body: bytes) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + body


VALID_IDX = _idx((3, 4, 5), bytes(range(60)))
IDX_INPUTS = st.one_of(
    st.binary(max_size=256),
    mutated(VALID_IDX, header=16),
    st.builds(_idx, st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
              st.binary(max_size=64)),
)


@fuzz("idx")
@given(IDX_INPUTS)
def test_parse_idx(raw):
    try:
        array = data.parse_idx(raw, "fuzz")
    except DataError:
        return
    assert array.dtype == np.uint8 and array.size == len(raw) - 4 - 4 * array.ndim


LABELS = data.DATASETS["mnist"].files["t10k-labels"]


@pytest.fixture(scope="module")
def shared_labels_gz(data_dir) -> bytes:
    return (data_dir / "mnist" / f"{LABELS.name}.gz").read_bytes()


@fuzz("gz")
@given(st.data())
def test_read_verified(shared_labels_gz, data_):
    raw = data_.draw(st.one_of(st.binary(max_size=512), mutated(shared_labels_gz, header=64)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.gz"
        path.write_bytes(raw)
        try:
            out = data.read_verified(path, LABELS)
        except DataError:
            return
    assert out == gzip.decompress(shared_labels_gz)  # only the faithful file gets through


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
SEED_ARCH = build_model("lesson").arch.to_dict()


@st.composite
def mutated_json(draw, value):
    """`value` with one node (picked at random, at any depth) replaced by random JSON."""
    if draw(st.integers(0, 3)) == 0 or not isinstance(value, dict | list) or not value:
        return draw(JSON | st.sampled_from([0, -1, 4096, 4097, 2**40, "Conv2D", "relu"]))
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = draw(st.sampled_from(keys))
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = draw(mutated_json(value[key]))
    return copy


@fuzz("arch")
@given(st.one_of(JSON, mutated_json(SEED_ARCH)))
def test_architecture_from_dict(description):
    try:
        arch = Architecture.from_dict(description)
    except ArchitectureError:
        return
    assert all(min(shape) >= 1 for shape in arch.shapes())


def _save_run(run: Path) -> tuple[bytes, bytes]:
    checkpoint.save_model(run, build_model("lesson", seed=0), {"dataset": "mnist"})
    return (run / checkpoint.META).read_bytes(), (run / checkpoint.WEIGHTS).read_bytes()


with tempfile.TemporaryDirectory() as _tmp:
    META_BYTES, WEIGHT_BYTES = _save_run(Path(_tmp))
META = json.loads(META_BYTES)


@fuzz("model")
@given(st.one_of(
    st.tuples(mutated_json(META).map(lambda m: json.dumps(m).encode()), st.just(WEIGHT_BYTES)),
    st.tuples(mutated(META_BYTES), st.just(WEIGHT_BYTES)),
    st.tuples(st.just(META_BYTES), mutated(WEIGHT_BYTES, header=1200)),
))
def test_load_model(files):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / checkpoint.META).write_bytes(files[0])
        (Path(tmp) / checkpoint.WEIGHTS).write_bytes(files[1])
        try:
            model, meta = checkpoint.load_model(tmp)
        except ModelFileError:
            return
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def _state_bytes() -> bytes:
    states: list = []
    fit(TrainConfig(max_steps=1, batch_size=8, device="cpu"), tiny_mnist(8),
        on_epoch=states.append)
    buf = io.BytesIO()
    torch.save(states[-1].to_dict(), buf)
    return buf.getvalue()


STATE_BYTES = _state_bytes()


@fuzz("state")
@given(st.one_of(st.binary(max_size=512), mutated(STATE_BYTES),
                 mutated(STATE_BYTES[-2048:] if len(STATE_BYTES) > 2048 else STATE_BYTES)))
def test_load_state(raw):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / checkpoint.STATE).parent.mkdir()
        (Path(tmp) / checkpoint.STATE).write_bytes(raw)
        try:
            state = checkpoint.load_state(tmp)
        except ModelFileError:
            return
    assert isinstance(state.epoch, int) and isinstance(state.model, dict)


def _image_bytes(fmt: str, mode: str = "L") -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new(mode, (24, 20), 255 if mode == "L" else (255, 255, 255))
    ImageDraw.Draw(img).line((5, 3, 12, 17), fill=0, width=3)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


IMAGES = [_image_bytes(f) for f in ("PNG", "JPEG", "GIF", "BMP", "WEBP")]
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBP"]


@fuzz("image")
@given(st.one_of(
    st.sampled_from(IMAGES).flatmap(lambda b: mutated(b, header=64)),
    st.tuples(st.sampled_from(MAGICS), st.binary(max_size=200)).map(lambda t: t[0] + t[1]),
    st.binary(max_size=200),
))
def test_decode_image_and_to_mnist(raw):
    try:
        digit = preprocess.to_mnist(preprocess.decode_image(raw))
    except ImageError:
        return
    assert digit.shape == (28, 28) and digit.dtype == np.uint8


@fuzz("array")
@given(hnp.arrays(st.sampled_from([np.uint8, np.float32, np.float64, np.int64, np.bool_]),
                  hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=40)))
def test_to_mnist_on_arrays(array):
    try:
        digit = preprocess.to_mnist(array)
    except ImageError:
        return
    assert digit.shape == (28, 28) and digit.dtype == np.uint8


# ---------------------------------------------------------------- checkpoint values

# A small network keeps each example's state at ~100 KB (the lesson's is 1.1 MB).
TINY = Architecture.from_dict({"name": "tiny", "input_shape": [28, 28, 1], "layers": [
    {"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}]})


def _tiny_state() -> dict:
    states: list = []
    fit(TrainConfig(arch=TINY, max_steps=3, epochs=2, batch_size=4, device="cpu"),
        tiny_mnist(8), on_epoch=states.append, checkpoint_steps=1)
    mid = next(s for s in states if s.progress is not None)
    return mid.to_dict()


TINY_STATE = _tiny_state()
HOSTILE = st.one_of(
    JSON, st.sampled_from([0, -1, 2**63, 2**70, -10**9, float("nan"), float("inf"), -0.0,
                           True, "", "lesson", [], {}, None]),
    st.sampled_from([torch.zeros(()), torch.tensor(float("nan")), torch.full((3,), 1e30),
                     torch.zeros((2, 2), dtype=torch.int64), torch.zeros(3, dtype=torch.uint8),
                     torch.tensor(-1), torch.tensor(2**62), torch.zeros(5000, dtype=torch.uint8)]))


@st.composite
def mutated_state(draw):
    """The state with one value (top level, config, a history row or the progress inside
    the epoch) replaced by a hostile one, or one key removed or added."""
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY_STATE.items()}
    state["history"] = [dict(row) for row in state["history"]]
    where = draw(st.sampled_from(["top", "config", "history", "progress"]))
    target = {"top": state, "config": state["config"], "progress": state["progress"],
              "history": state["history"][0] if state["history"] else state}[where]
    key = draw(st.sampled_from(sorted(target) + ["unknown"]))
    if draw(st.integers(0, 5)) == 0:
        target.pop(key, None)
    else:
        target[key] = draw(HOSTILE)
    return state


@fuzz("state_values")
@given(mutated_state())
def test_load_state_values(state):
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint.save_state(Path(tmp), state)
        try:
            loaded = checkpoint.load_state(tmp)
        except ModelFileError:
            return
    assert loaded.steps >= 0 and loaded.config.arch.layers == TINY.layers
    if loaded.progress is not None:
        assert 0 <= loaded.progress["step"] <= loaded.progress["seen"]


# ---------------------------------------------------------------- history.csv

VALID_HISTORY = (b"epoch,loss,accuracy,val_loss,val_accuracy\n"
                 b"1,0.5,0.9,0.4,0.91\n2,0.3,0.95,0.3,0.93\n")
CSV_TEXT = st.lists(st.lists(st.sampled_from(
    ["epoch", "loss", "accuracy", "1", "2", "-1", "0", "nan", "inf", "1e400", "x", "", '"',
     "0.5", "\x00", "1,5"]), max_size=5).map(",".join), max_size=6).map(
    lambda rows: "\n".join(rows).encode())


@fuzz("history")
@given(st.one_of(mutated(VALID_HISTORY), CSV_TEXT, st.binary(max_size=200)))
def test_read_history(raw):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / checkpoint.HISTORY).write_bytes(raw)
        try:
            rows = checkpoint.read_history(tmp)
        except ModelFileError:
            return
    assert all(row["epoch"] >= 1 and all(np.isfinite(v) for v in row.values())
               for row in rows)


# ---------------------------------------------------------------- Keras files

KERAS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "keras" / \
    "fixture_seed.keras"


@pytest.fixture(scope="module")
def keras_members() -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(KERAS) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@fuzz("keras_config")
@given(st.data())
def test_architecture_from_keras(keras_members, data_):
    from mnist_cnn.interop import architecture_from_keras

    config = data_.draw(st.one_of(JSON, mutated_json(json.loads(keras_members["config.json"]))))
    try:
        arch = architecture_from_keras(config).check_classifier()
    except (ArchitectureError, ModelFileError):
        return
    assert all(min(shape) >= 1 for shape in arch.shapes())


WEIGHT_DTYPES = ["f4", "f8", "f2", "i4", "u1", "S3", "c8"]


@fuzz("keras_weights")
@given(st.data())
def test_import_keras_weights(keras_members, data_):
    """Each layer variable replaced by an array of another shape, type or size (up to a
    declared 4 GB of fill value): a model, or one ModelFileError; never a big read."""
    import zipfile

    import h5py

    from mnist_cnn.interop import import_keras

    layer = data_.draw(st.sampled_from(["conv2d", "conv2d_1", "conv2d_2", "dense",
                                        "dense_1"]))
    var = data_.draw(st.sampled_from(["0", "1", "2"]))
    shape = tuple(data_.draw(st.lists(st.sampled_from([0, 1, 3, 32, 64, 30000]),
                                      max_size=4)))
    dtype = data_.draw(st.sampled_from(WEIGHT_DTYPES))
    buf = io.BytesIO(keras_members["model.weights.h5"])
    with h5py.File(buf, "r+") as h5:
        group = h5[f"layers/{layer}/vars"]
        if var in group:
            del group[var]
        big = int(np.prod(shape, dtype=np.float64)) > 1 << 20
        group.create_dataset(var, shape=shape, dtype=dtype,
                             **({"chunks": True, "compression": "gzip"} if big and shape
                                else {}))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        with zipfile.ZipFile(path, "w") as out:
            for name, raw in {**keras_members, "model.weights.h5": buf.getvalue()}.items():
                out.writestr(name, raw)
        try:
            model = import_keras(path)
        except ModelFileError:
            return
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_the_fuzzing_budget_is_recorded():
    """At least 3,000 examples per CI run, and docs/RELIABILITY.md says how many."""
    total = sum(EXAMPLES.values())
    doc = (Path(__file__).resolve().parents[1] / "docs" / "RELIABILITY.md").read_text()
    assert total >= 3000 and f"{total:,} examples in all" in doc
    for kind, count in EXAMPLES.items():
        assert f"| {count} |" in doc, kind


@pytest.mark.parametrize("mutate", [
    lambda layers: layers[1].__setitem__("class_name", []),  # unhashable: once a TypeError
    lambda layers: layers[0]["config"].__setitem__("batch_shape", 5),
])
def test_found_by_fuzzing_keras_configs_are_one_error(keras_members, mutate):
    """Cases the fuzzer found, kept as plain tests so that they run every time."""
    from mnist_cnn.interop import architecture_from_keras

    config = json.loads(keras_members["config.json"])
    mutate(config["config"]["layers"])
    with pytest.raises(ArchitectureError):
        architecture_from_keras(config)
