"""Nothing we load runs code, and every damaged file gets our own clear error.

The corpus (tests/corpus/, made by make_corpus.py) holds truncated, zero-length, wrong-magic,
absurd-dimension, polyglot and pickle-payload files; gzip bombs are generated here.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

from mnist_cnn import checkpoint, data
from mnist_cnn.cli import main
from mnist_cnn.errors import DataError, ModelFileError
from mnist_cnn.model import build_model

CORPUS = Path(__file__).parent / "corpus"
MARKER = "PWNED"  # what the pickle payloads would create in the current directory


def _files(kind: str) -> list[Path]:
    files = sorted((CORPUS / kind).iterdir())
    assert files, f"empty corpus folder {kind}"
    return files


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a payload would leave its marker
    run = tmp_path / "run"
    checkpoint.save_model(run, build_model("lesson", seed=0), {"dataset": "mnist"})
    yield run
    assert not (tmp_path / MARKER).exists(), "a payload in a loaded file was executed"


@pytest.mark.parametrize("path", _files("idx"), ids=lambda p: p.name)
def test_nasty_idx_files(path, tmp_path):
    with pytest.raises(DataError, match="some-file"):
        data.parse_idx(path.read_bytes(), "some-file")
    spec = data.DATASETS["mnist"].files["t10k-labels"]
    for name, raw in (("x", path.read_bytes()), ("x.gz", gzip.compress(path.read_bytes()))):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(DataError, match=str(tmp_path / name)):
            data.read_verified(tmp_path / name, spec)


@pytest.mark.parametrize("split", ["t10k-labels", "train-images"])
def test_gzip_bomb_is_cut_off_at_the_expected_size(tmp_path, split):
    spec = data.DATASETS["mnist"].files[split]
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:  # 256 MiB of zeros in ~250 KB
        for _ in range(256):
            fh.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(DataError, match=f"expected {spec.size}"):
        data.read_verified(bomb, spec)


def test_gzip_that_lies_about_its_length(tmp_path):
    good = gzip.compress(bytes(10008))
    lying = good[:-4] + (2**32 - 1).to_bytes(4, "little")  # ISIZE trailer lies
    (tmp_path / "x.gz").write_bytes(lying + zlib.compress(b"junk"))
    with pytest.raises(DataError):
        data.read_verified(tmp_path / "x.gz", data.DATASETS["mnist"].files["t10k-labels"])


@pytest.mark.parametrize("path", _files("weights"), ids=lambda p: p.name)
def test_nasty_weight_files(path, run_dir):
    (run_dir / checkpoint.WEIGHTS).write_bytes(path.read_bytes())
    with pytest.raises(ModelFileError, match="model.safetensors"):
        checkpoint.load_model(run_dir)


def test_weights_of_the_wrong_dtype_or_values(run_dir):
    from safetensors.torch import save_file

    good = build_model("lesson").state_dict()
    for change in ({"layers.conv2d.weight": good["layers.conv2d.weight"].half()},
                   {"layers.conv2d.bias": torch.full((32,), float("nan"))}):
        save_file({**good, **change}, str(run_dir / checkpoint.WEIGHTS))
        with pytest.raises(ModelFileError, match="layers.conv2d"):
            checkpoint.load_model(run_dir)


@pytest.mark.parametrize("path", _files("json"), ids=lambda p: p.name)
def test_nasty_model_json(path, run_dir):
    (run_dir / checkpoint.META).write_bytes(path.read_bytes())
    with pytest.raises(ModelFileError, match="model.json"):
        checkpoint.load_model(run_dir)


def test_oversized_model_json(run_dir):
    (run_dir / checkpoint.META).write_bytes(b" " * (checkpoint.MAX_META_BYTES + 1) + b"{}")
    with pytest.raises(ModelFileError, match="never over"):
        checkpoint.load_model(run_dir)


def test_a_model_json_whose_layers_do_not_fit_the_weights(run_dir):
    """Any architecture loads, but only with weights of exactly its shapes."""
    meta = json.loads((run_dir / checkpoint.META).read_text())
    meta["architecture"] = {**build_model("lesson-pool3").arch.to_dict(), "name": "lesson"}
    (run_dir / checkpoint.META).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"layers.dense.weight is .* \(64, 576\), "
                                             r"expected float32 \(64, 64\)"):
        checkpoint.load_model(run_dir)


@pytest.mark.parametrize("path", _files("state"), ids=lambda p: p.name)
def test_nasty_checkpoints_never_run_code(path, run_dir):
    (run_dir / checkpoint.STATE).parent.mkdir()
    (run_dir / checkpoint.STATE).write_bytes(path.read_bytes())
    with pytest.raises(ModelFileError, match="state.pt"):
        checkpoint.load_state(run_dir)


def test_the_payload_is_live(tmp_path, monkeypatch):
    """The corpus' payload really does run under plain pickle: the tests above mean something."""
    import pickle

    monkeypatch.chdir(tmp_path)
    pickle.loads((CORPUS / "state" / "pickle-payload.pt").read_bytes())
    assert (tmp_path / MARKER).is_dir()


@pytest.mark.parametrize("argv, words", [
    (["evaluate", "{run}"], ["model.safetensors", "damaged"]),
    (["train", "--resume", "{run}"], ["state.pt", "damaged or unsafe"]),
])
def test_cli_truncated_files_are_one_line(run_dir, capsys, argv, words):
    weights = run_dir / checkpoint.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    (run_dir / checkpoint.STATE).parent.mkdir()
    (run_dir / checkpoint.STATE).write_bytes((CORPUS / "state" / "truncated-zip.pt").read_bytes())
    assert main([a.format(run=run_dir) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert all(w in err for w in words), err


def test_cli_subprocess_bad_files_and_unknown_names(run_dir, tmp_path):
    (run_dir / checkpoint.META).write_bytes((CORPUS / "json" / "deep-nesting.json").read_bytes())
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for argv, code, word in ((["evaluate", str(run_dir)], 1, "not valid JSON"),
                             (["summary", "--arch", "vgg"], 2, "unknown architecture"),
                             (["train", "--recipe", "slow"], 2, "unknown recipe")):
        proc = subprocess.run([sys.executable, "-m", "mnist_cnn", *argv], env=env,
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr and word in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
