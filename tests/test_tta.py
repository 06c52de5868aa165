"""Test-time augmentation: each view checked against an independent reference, the average
checked against the mean of the views' probabilities, and `--tta` through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_cnn.averaging import copies_per_image, probabilities
from mnist_cnn.checkpoint import save_model
from mnist_cnn.cli import build_parser, main
from mnist_cnn.errors import UsageError
from mnist_cnn.evaluate import EVAL_BATCH, predict_logits
from mnist_cnn.model import Architecture, build_model
from mnist_cnn.predict import Predictor
from mnist_cnn.tta import (
    MAX_TTA,
    VIEWS,
    TestTimeAugmentation,
    distort,
    rotate_scale,
    shift,
    with_tta,
)

ROUNDING = 1e-6  # float32 rounding of a mean of probabilities, nothing more
# A small network, so that commands over the 10,000 test images take a moment.
TINY = Architecture.from_dict({"name": "tiny", "layers": [
    {"type": "Conv2D", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
     "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": [2, 2]}, {"type": "Flatten"},
    {"type": "Dense", "units": 10, "activation": "softmax"}]})


def _shift_reference(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift (..., H, W) by whole pixels with numpy: pad with zeros, then crop."""
    h, w = x.shape[-2:]
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(x, pad)
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def _images(mnist, n: int = 64) -> torch.Tensor:
    (_, _), (x_test, _) = mnist
    return torch.from_numpy(x_test[:n].astype(np.float32) / 255).unsqueeze(1)


@pytest.mark.parametrize("dx, dy", [(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1)])
def test_shifts_move_whole_pixels_and_bring_in_black(dx, dy):
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(shift(x, dx, dy), torch.from_numpy(_shift_reference(x.numpy(), dx, dy)))


def test_rotation_by_quarter_turns_matches_numpy_and_no_change_is_identity():
    x = torch.rand(3, 1, 28, 28)
    for degrees, k in ((90, 1), (-90, -1), (180, 2)):  # np.rot90: k > 0 is anticlockwise
        want = torch.from_numpy(np.rot90(x.numpy(), k, axes=(2, 3)).copy())
        assert torch.allclose(rotate_scale(x, degrees), want, atol=1e-5)
    assert torch.allclose(rotate_scale(x, 0.0, 1.0), x, atol=1e-5)


def test_scaling_shrinks_a_square_about_the_centre():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 4:24, 4:24] = 1.0  # a 20x20 square in the middle
    ink = rotate_scale(x, 0.0, 0.5)[0, 0] > 0.5
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (9, 18, 9, 18)  # 10x10, centred


def test_the_views_are_fixed_and_the_first_is_the_image_itself():
    assert MAX_TTA == len(VIEWS) == 9
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(distort(x, VIEWS[0]), x)
    assert all(not torch.equal(distort(x, v), x) for v in VIEWS[1:])
    assert torch.equal(distort(x, VIEWS[6]), distort(x, VIEWS[6]))  # the same every call


@pytest.mark.parametrize("n", [2, 5, MAX_TTA])
def test_tta_is_the_mean_of_the_views_probabilities(n, mnist):
    net = build_model("lesson", seed=0).eval()
    x = _images(mnist)
    with torch.inference_mode():
        got = probabilities(with_tta(net, n), x)
        views = []
        for view in VIEWS[:n]:  # shifts by numpy, the rest by the checked rotate_scale
            if view.degrees or view.scale != 1.0:
                seen = rotate_scale(x, view.degrees, view.scale)
            else:
                seen = torch.from_numpy(_shift_reference(x.numpy(), view.dx, view.dy))
            views.append(torch.softmax(net(seen), dim=1))
        want = torch.stack(views).mean(0)
        plain = torch.softmax(net(x), dim=1)
    assert got.shape == (len(x), 10)
    assert torch.allclose(got, want, atol=ROUNDING, rtol=0)
    assert torch.allclose(got.sum(1), torch.ones(len(x)), atol=ROUNDING)
    assert (got - plain).abs().max() > 1e-3  # the views do change the answer


def test_tta_logits_give_back_the_mean_and_one_view_is_the_model_itself():
    net = build_model("lesson", seed=1).eval()
    x = torch.rand(4, 1, 28, 28)
    assert with_tta(net, 1) is net
    tta = with_tta(net, 3)
    assert isinstance(tta, TestTimeAugmentation) and tta.arch == net.arch
    with torch.inference_mode():
        assert torch.allclose(torch.softmax(tta(x), dim=1), tta.probabilities(x),
                              atol=ROUNDING, rtol=0)


def test_evaluation_batches_hold_about_eval_batch_images_whatever_the_views():
    # The views of a batch run as one forward pass; evaluation gives the model fewer images
    # per call so that the pass stays near EVAL_BATCH images (9 x 256 images spilled past
    # glibc's mmap threshold: 2.3x slower, docs/BENCHMARKS.md), with the same logits.
    net = build_model(TINY, seed=0).eval()
    seen: list[int] = []
    net.register_forward_pre_hook(lambda _, args: seen.append(len(args[0])))
    x = torch.rand(3 * EVAL_BATCH // 2, 1, 28, 28)
    tta = with_tta(net, 9)
    assert tta.copies_per_image == 9 and copies_per_image(net) == 1
    chunked = predict_logits(tta, x)
    assert max(seen) <= EVAL_BATCH and sum(seen) == 9 * len(x)
    with torch.inference_mode():
        assert torch.allclose(chunked, tta(x), atol=ROUNDING, rtol=0)
    seen.clear()
    predict_logits(net, x)
    assert seen == [EVAL_BATCH, len(x) - EVAL_BATCH]


@pytest.mark.parametrize("n", [0, -1, MAX_TTA + 1])
def test_a_number_of_views_there_are_not_is_refused(n):
    with pytest.raises(UsageError, match="--tta"):
        with_tta(build_model("lesson", seed=0), n)


def test_predictor_with_tta_shows_the_network_and_answers_with_the_mean():
    net = build_model("lesson", seed=2).eval()
    digits = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    predictor = Predictor(with_tta(net, 5))
    x = torch.from_numpy(digits.astype(np.float32) / 255).unsqueeze(1)
    with torch.inference_mode():
        want = probabilities(TestTimeAugmentation(net, 5), x).numpy()
        first_maps = net.forward_all(x[:1])[0][1][0].numpy()
    assert np.allclose(predictor.probabilities(digits), want, atol=ROUNDING, rtol=0)
    layers = predictor.activations(digits[0])
    assert np.allclose(layers[0].values, first_maps, atol=ROUNDING)  # the image's own maps
    assert np.allclose(layers[-1].values, want[0], atol=ROUNDING)  # the averaged answer
    assert len(predictor.conv1_filters()) == 32


# --- the CLI ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "untrained"
    save_model(run_dir, build_model(TINY, seed=3), {"dataset": "mnist", "metrics": {}})
    return run_dir


def test_evaluate_tta_scores_the_mean_of_the_views(run, mnist, data_dir, capsys):
    assert main(["evaluate", str(run), "--tta", "5", "--json",
                 "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    (_, _), (x_test, y_test) = mnist
    x = torch.from_numpy(x_test.astype(np.float32) / 255).unsqueeze(1)
    model = TestTimeAugmentation(build_model(TINY, seed=3).eval(), 5)
    with torch.inference_mode():
        p = probabilities(model, x)
    y = torch.from_numpy(y_test.astype(np.int64))
    assert report["tta"] == 5 and report["count"] == len(y_test)
    assert report["accuracy"] == pytest.approx((p.argmax(1) == y).float().mean().item(),
                                               abs=1.5 / len(y))  # a near tie may flip
    loss = -torch.log(p[torch.arange(len(y)), y]).mean().item()
    assert report["loss"] == pytest.approx(loss, rel=1e-4)
    assert main(["evaluate", str(run), "--tta", "2", "--data-dir", str(data_dir)]) == 0
    assert "mean of the probabilities of 2 views of each image" in capsys.readouterr().out


def test_predict_tta_prints_the_mean_of_the_views(run, tmp_path, capsys):
    path = tmp_path / "seven.png"
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    img.save(path)
    saved = tmp_path / "seen"
    assert main(["predict", str(run), str(path), "--tta", "7", "--json",
                 "--save-preprocessed", str(saved)]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    digit = np.asarray(Image.open(next(saved.iterdir())))
    want = Predictor.from_run(run, tta=7).probabilities(digit[None])[0]
    plain = Predictor.from_run(run).probabilities(digit[None])[0]
    assert np.allclose(row["probabilities"], want, atol=1e-6)  # printed to 6 decimals
    assert not np.allclose(row["probabilities"], plain, atol=1e-4)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_cli_refuses_a_bad_tta_in_one_line(command, run, tmp_path, capsys):
    argv = [command, str(run), *(["nothing.png"] if command == "predict" else []),
            "--tta", str(MAX_TTA + 1)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--tta must be between 1" in err


def test_the_help_names_the_largest_tta():
    for command in ("evaluate", "predict"):
        sub = build_parser()._subparsers._group_actions[0].choices[command]
        assert f"to {MAX_TTA}" in " ".join(sub.format_help().split())
