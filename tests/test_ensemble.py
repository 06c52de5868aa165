"""Ensembles: `mnist-cnn ensemble` writes a run whose probabilities are exactly the mean of
its members'; every command takes it; bad members are refused in one line, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_cnn.averaging import Ensemble, probabilities
from mnist_cnn.checkpoint import load_model, member_dir, read_history, read_meta, save_model
from mnist_cnn.cli import main
from mnist_cnn.model import Architecture, Net, build_model
from mnist_cnn.predict import Predictor
from mnist_cnn.tta import TestTimeAugmentation

ROUNDING = 1e-6  # float32 rounding of a mean of probabilities, nothing more
SEEDS = (0, 1, 2)
# Small and briefly trained: members that differ, and commands over the test set in moments.
TINY = Architecture.from_dict({"name": "tiny", "layers": [
    {"type": "Conv2D", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
     "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": [2, 2]}, {"type": "Flatten"},
    {"type": "Dense", "units": 10, "activation": "softmax"}]})


@pytest.fixture(scope="module")
def members(data_dir, tmp_path_factory) -> list[Path]:
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.run import train_run

    root = tmp_path_factory.mktemp("members")
    runs = []
    for seed in SEEDS:
        cfg = TrainConfig(arch=TINY, recipe="fast", seed=seed, max_steps=40)
        runs.append(train_run(cfg, root / f"tiny-{seed}", data_dir).run_dir)
    return runs


@pytest.fixture(scope="module")
def ensemble(members, data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ensembles") / "ens"
    assert main(["ensemble", *map(str, members), "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    return out


def _test_tensors(mnist, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    (_, _), (x_test, y_test) = mnist
    x = torch.from_numpy(x_test[:n].astype(np.float32) / 255).unsqueeze(1)
    return x, torch.from_numpy(y_test[:n].astype(np.int64))


def _members_mean(members: list[Path], x: torch.Tensor) -> torch.Tensor:
    """The mean of the original member runs' softmax probabilities, computed here."""
    with torch.inference_mode():
        return torch.stack([torch.softmax(load_model(m)[0](x), dim=1) for m in members]).mean(0)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mnist-cnn: error: ") and "Traceback" not in err
    return err


# --- the mean ---------------------------------------------------------------------------

def test_the_ensemble_answers_with_the_mean_of_its_members(ensemble, members, mnist):
    model, meta = load_model(ensemble)
    assert isinstance(model, Ensemble) and len(model.members) == len(SEEDS)
    assert meta.members == tuple(map(str, members)) and meta.recipe == "ensemble"
    x, _ = _test_tensors(mnist, 500)
    want = _members_mean(members, x)
    with torch.inference_mode():
        got = probabilities(model, x)
        logits = model(x)
    assert torch.allclose(got, want, atol=ROUNDING, rtol=0)
    assert torch.allclose(torch.softmax(logits, dim=1), want, atol=ROUNDING, rtol=0)
    singles = [torch.softmax(load_model(m)[0](x), dim=1) for m in members]
    assert all((got - s).abs().max() > 1e-3 for s in singles)  # not any one member
    assert np.allclose(Predictor.from_run(ensemble).probabilities(
        (x[:, 0] * 255).round().numpy().astype(np.uint8)), want.numpy(), atol=ROUNDING)


def test_tta_of_an_ensemble_is_the_mean_over_views_and_members(ensemble, members, mnist):
    from mnist_cnn.tta import VIEWS, distort

    x, _ = _test_tensors(mnist, 100)
    with torch.inference_mode():
        got = probabilities(TestTimeAugmentation(load_model(ensemble)[0], 4), x)
        want = torch.stack([_members_mean(members, distort(x, v)) for v in VIEWS[:4]]).mean(0)
    assert torch.allclose(got, want, atol=ROUNDING, rtol=0)


def test_the_ensemble_folder_holds_copies_of_its_members(ensemble, members, tmp_path, mnist):
    moved = tmp_path / "moved"
    shutil.copytree(ensemble, moved)  # the originals are elsewhere: it needs only itself
    for i, member in enumerate(members):
        copy = member_dir(moved, i)
        assert read_meta(copy).to_dict() == read_meta(member).to_dict()
        assert (copy / "summary.txt").read_text() == (member / "summary.txt").read_text()
        assert read_history(copy) == read_history(member) != []
    assert "Member 03" in (moved / "summary.txt").read_text()
    x, _ = _test_tensors(mnist, 50)
    with torch.inference_mode():
        assert torch.allclose(probabilities(load_model(moved)[0], x), _members_mean(members, x),
                              atol=ROUNDING, rtol=0)


# --- every command ----------------------------------------------------------------------

def test_evaluate_scores_the_mean(ensemble, members, mnist, data_dir, capsys):
    assert main(["evaluate", str(ensemble), "--json", "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)  # in the members' bf16, as trained
    assert read_meta(ensemble).metrics["test_accuracy"] == report["accuracy"]
    assert main(["evaluate", str(ensemble), "--json", "--precision", "fp32",
                 "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)  # exact, as the mean below
    x, y = _test_tensors(mnist)
    p = _members_mean(members, x)
    assert report["members"] == len(SEEDS) and report["count"] == len(y)
    assert report["accuracy"] == pytest.approx((p.argmax(1) == y).float().mean().item(),
                                               abs=1.5 / len(y))  # a near tie may flip
    loss = -torch.log(p[torch.arange(len(y)), y]).mean().item()
    assert report["loss"] == pytest.approx(loss, rel=1e-5)
    assert main(["evaluate", str(ensemble), "--tta", "3", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mean of the probabilities of 3 networks (an ensemble) and 3 views")


def test_predict_prints_the_mean(ensemble, members, tmp_path, capsys):
    from PIL import Image, ImageDraw

    path = tmp_path / "seven.png"
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    img.save(path)
    assert main(["predict", str(ensemble), str(path), "--json",
                 "--save-preprocessed", str(tmp_path / "seen")]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    digit = np.asarray(Image.open(next((tmp_path / "seen").iterdir())))
    x = torch.from_numpy(digit.astype(np.float32) / 255)[None, None]
    want = _members_mean(members, x)[0].numpy()
    assert np.allclose(row["probabilities"], want, atol=1e-6)  # printed to 6 decimals
    assert row["label"] == int(want.argmax())


def test_serve_answers_with_the_mean_and_the_page_gets_every_member(ensemble, members):
    from fastapi.testclient import TestClient

    from mnist_cnn.serve_app import create_app

    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 12:16] = 255  # a stroke: a one
    app = create_app(Predictor.from_run(ensemble))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        answer = client.post("/api/predict", json={"pixels": pixels.tolist(),
                                                   "activations": True}).json()
        info = client.get("/api/model").json()
        script = client.get("/model.js").text
    digit = np.array(answer["input"], np.uint8)  # as the server prepared it
    want = _members_mean(members, torch.from_numpy(digit / 255.0).float()[None, None])[0]
    assert np.allclose(answer["probabilities"], want.numpy(), atol=1e-6)
    first = Predictor.from_run(members[0]).activations(digit)[0].values  # the first's maps
    assert np.allclose(answer["activations"][0]["values"], first, atol=1e-4)
    assert np.allclose(answer["activations"][-1]["values"], want.numpy(), atol=1e-4)
    assert info["meta"]["members"] == list(map(str, members))
    payload = json.loads(script.removeprefix("window.MNIST_MODEL = ").rstrip(";\n"))
    assert payload["meta"]["members"] == len(SEEDS)
    assert len(payload["members"]) == len(SEEDS) - 1  # the first member is the page's own
    assert payload["architecture"] == TINY.to_dict()


def test_report_of_an_ensemble(ensemble, members, mnist, data_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(ensemble), "--out", str(out), "--data-dir", str(data_dir)]) == 0
    recorded = read_meta(ensemble).metrics["test_accuracy"]  # what evaluate computed
    x, y = _test_tensors(mnist)
    assert recorded == pytest.approx(
        (_members_mean(members, x).argmax(1) == y).float().mean().item(), abs=1.5 / len(y))
    assert f"Report: test accuracy {recorded:.2%}" in capsys.readouterr().out
    assert (out / "index.html").is_file() and (out / "confusion.png").is_file()
    assert (out / "feature_maps_0.png").is_file()  # the first member's maps
    card = (out / "MODEL_CARD.md").read_text()
    assert f"ensemble of {len(SEEDS)} such networks" in card
    page = (out / "index.html").read_text()
    assert f"the mean of {len(SEEDS)} networks&#x27; probabilities" in page
    assert f"네트워크 {len(SEEDS)}개의 확률 평균" in page
    # The "not sure" line the report chose is the ensemble's, and the page takes it as such.
    from mnist_cnn.export_web import model_script

    model, meta = load_model(ensemble)
    assert meta.calibration is not None and meta.members == tuple(map(str, members))
    payload = json.loads(model_script(model, meta).removeprefix("window.MNIST_MODEL = ")
                         .rstrip(";\n"))
    assert payload["calibration"]["not_sure_below"] == meta.calibration.not_sure_below


def test_export_onnx_holds_every_member(ensemble, members, mnist, tmp_path, data_dir, capsys):
    ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    out = tmp_path / "ens.onnx"
    assert main(["export", str(ensemble), "--format", "onnx", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x, _ = _test_tensors(mnist, 200)
    got = session.run(["probabilities"], {"image": x.numpy()})[0]
    assert np.allclose(got, _members_mean(members, x).numpy(), atol=1e-5)
    assert session.get_modelmeta().custom_metadata_map["members"] == str(len(SEEDS))


def test_export_web_carries_every_member(ensemble, tmp_path, data_dir, capsys):
    out = tmp_path / "site"
    assert main(["export", str(ensemble), "--format", "web", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    script = (out / "model.js").read_text()
    payload = json.loads(script.removeprefix("window.MNIST_MODEL = ").rstrip(";\n"))
    assert len(payload["members"]) == len(SEEDS) - 1
    assert f"an ensemble of {len(SEEDS)} networks" in (out / "README.txt").read_text()


def test_export_keras_refuses_an_ensemble_in_one_line(ensemble, tmp_path, data_dir, capsys):
    out = tmp_path / "ens.keras"
    assert main(["export", str(ensemble), "--format", "keras", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 2
    err = _one_error_line(capsys)
    assert "is an ensemble of 3 networks" in err and "members/01" in err
    assert list(tmp_path.iterdir()) == []


# --- refusals ---------------------------------------------------------------------------

def _damaged(members: list[Path], tmp_path: Path, how: str) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(members[1], bad)
    if how == "weights":
        (bad / "model.safetensors").write_bytes(b"\0" * 100)
    else:
        (bad / "model.json").write_text("{not json")
    return bad


@pytest.mark.parametrize("case, words", [
    ("one", "an ensemble has 2 to 16 members; 1 given"),
    ("missing", "no-such-run"),
    ("weights", "damaged weights file"),
    ("meta", "model.json"),
    ("nested", "is an ensemble itself"),
    ("twice", "listed twice"),
    ("dataset", "every member must read the same dataset"),
    ("exists", "is not empty and is not a run (it holds keep.txt)"),
    ("ensemble exists", "already holds a run"),
    ("holds", "holds the member"),
])
def test_bad_members_and_outs_are_refused_with_nothing_written(case, words, members, ensemble,
                                                               tmp_path, data_dir, capsys):
    parent = tmp_path / "out"
    parent.mkdir()
    out = parent / "ens"
    runs = [str(m) for m in members[:2]]
    if case == "one":
        runs = runs[:1]
    elif case == "missing":
        runs.append(str(tmp_path / "no-such-run"))
    elif case in ("weights", "meta"):
        runs.append(str(_damaged(members, tmp_path, case)))
    elif case == "nested":
        runs.append(str(ensemble))
    elif case == "twice":
        runs.append(runs[0])
    elif case == "dataset":
        fashion = tmp_path / "fashion"
        save_model(fashion, build_model(TINY, seed=0), {"dataset": "fashion-mnist"})
        runs.append(str(fashion))
    elif case == "exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "ensemble exists":
        out = ensemble
    elif case == "holds":  # --overwrite would remove the members themselves
        out = members[0].parent
    before = sorted(p.name for p in out.parent.iterdir())
    code = main(["ensemble", *runs, "--out", str(out), "--data-dir", str(data_dir),
                 *(["--overwrite"] if case == "holds" else [])])
    assert code != 0
    assert words in _one_error_line(capsys)
    assert sorted(p.name for p in out.parent.iterdir()) == before  # no folder, no temp left
    if case == "exists":
        assert (out / "keep.txt").read_text() == "mine"
    if case == "ensemble exists":
        assert len(load_model(ensemble)[0].members) == len(SEEDS)


def test_overwrite_replaces_the_folder_as_a_whole(members, tmp_path, data_dir, capsys):
    out = tmp_path / "ens"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert main(["ensemble", str(members[0]), str(members[2]), "--out", str(out),
                 "--overwrite", "--data-dir", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    assert f"Wrote the ensemble of 2 to {out}" in printed and "member 02" in printed
    assert sorted(p.name for p in out.iterdir()) == ["members", "model.json", "summary.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens"]  # no lock, no staging left
    assert read_meta(out).members == (str(members[0]), str(members[2]))
    assert read_meta(out).data_dir == str(data_dir.absolute())  # evaluate finds it again
    # An ensemble replaced by another, as a whole
    assert main(["ensemble", *map(str, members), "--out", str(out), "--overwrite",
                 "--data-dir", str(data_dir)]) == 0
    assert read_meta(out).members == tuple(map(str, members))
    assert sorted(p.name for p in (out / "members").iterdir()) == ["01", "02", "03"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens"]


@pytest.mark.parametrize("damage", ["no member", "nested", "other dataset"])
def test_a_damaged_ensemble_is_refused_in_one_line(damage, ensemble, tmp_path, data_dir,
                                                   capsys):
    bad = tmp_path / "bad"
    shutil.copytree(ensemble, bad)
    second = member_dir(bad, 1)
    if damage == "no member":
        shutil.rmtree(second)
        words = "missing; the ensemble"
    elif damage == "nested":
        shutil.rmtree(second)
        shutil.copytree(ensemble, second)
        words = "an ensemble inside an ensemble"
    else:
        meta = json.loads((second / "model.json").read_text())
        (second / "model.json").write_text(json.dumps({**meta, "dataset": "fashion-mnist"}))
        words = "a fashion-mnist model in a mnist ensemble"
    assert main(["evaluate", str(bad), "--data-dir", str(data_dir)]) == 1
    assert words in _one_error_line(capsys)


def test_a_single_network_still_loads_as_a_net(members):
    model, meta = load_model(members[0])
    assert isinstance(model, Net) and meta.members == ()
    assert "members" not in json.loads((members[0] / "model.json").read_text())


# --- the page, in a real browser --------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_the_served_page_answers_with_the_mean_and_says_so(ensemble, members, mnist):
    from playwright.sync_api import sync_playwright

    from browser_kit import CHROMIUM, CLASSIFY, launch
    from mnist_cnn.serve_app import create_app
    from server_kit import background_server

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    digits = mnist[1][0][:50]
    with background_server(create_app(Predictor.from_run(ensemble))) as url, \
            sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("[data-name=conv2d] canvas")
        line = page.locator("#model-line").text_content()
        results = page.evaluate(CLASSIFY, [d.ravel().tolist() for d in digits])
        browser.close()
    assert problems == []
    assert line.startswith(f"an ensemble of {len(SEEDS)} networks")
    every_member = len(SEEDS) * TINY.param_count()  # the count covers all the networks
    assert line.endswith(f"{every_member:,} parameters in all")
    got = np.array([r["probabilities"] for r in results])
    x = torch.from_numpy(digits.astype(np.float32) / 255).unsqueeze(1)
    assert np.abs(got - _members_mean(members, x).numpy()).max() < 1e-4  # browser vs torch
    first = np.array(Predictor.from_run(members[0]).probabilities(digits))
    assert np.abs(got - first).max() > 1e-3  # not the first member alone


def test_the_keras_api_refuses_an_ensemble_in_one_sentence(ensemble, members):
    from mnist_cnn import keras
    from mnist_cnn.errors import UsageError

    with pytest.raises(UsageError, match="is an ensemble of 3 networks, not one Sequential"):
        keras.models.load_model(ensemble)
    assert keras.models.load_model(members[0]).count_params() == TINY.param_count()


def test_members_may_differ_in_architecture(members, mnist, tmp_path, data_dir):
    other = tmp_path / "lesson"
    save_model(other, build_model("lesson", seed=5), {"dataset": "mnist"})
    out = tmp_path / "mixed"
    assert main(["ensemble", str(other), str(members[0]), "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    model, meta = load_model(out)
    assert meta.architecture.name == "lesson" and model.members[1].arch == TINY
    x, _ = _test_tensors(mnist, 100)
    with torch.inference_mode():
        assert torch.allclose(probabilities(model, x), _members_mean([other, members[0]], x),
                              atol=ROUNDING, rtol=0)


def test_the_help_names_the_largest_ensemble():
    from mnist_cnn.checkpoint import MAX_MEMBERS
    from mnist_cnn.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["ensemble"]
    assert f"(2 to {MAX_MEMBERS})" in sub.format_help()


def test_train_into_an_ensemble_folder_says_it_holds_a_run(ensemble, tmp_path, data_dir, capsys):
    """An ensemble folder is a run to `train --out` too: refused as one, not as other files."""
    out = tmp_path / "ens"
    shutil.copytree(ensemble, out)
    assert main(["train", "--max-steps", "1", "--out", str(out), "--data-dir",
                 str(data_dir)]) == 2
    assert "already holds a run" in _one_error_line(capsys)
