"""The report's saliency, calibration and robustness sections: the numbers shown are the
model's, the temperature comes from training images only, and calibration.json holds them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnist_cnn.report_trust import (
    HELD_OUT_MAX,
    HELD_OUT_TRAINING,
    ROBUSTNESS_IMAGES,
    SALIENCY_MISTAKES,
    held_out,
)


@pytest.fixture(scope="module")
def trust(written_report):
    return written_report.data.trust


def test_saliency_explains_the_most_confident_mistakes_for_their_wrong_answer(written_report,
                                                                              trust):
    mistakes = written_report.data.mistakes[:SALIENCY_MISTAKES]
    assert trust.mistakes == [m.index for m in mistakes]
    assert trust.mistake_ig.target.tolist() == [m.predicted for m in mistakes]
    assert trust.example_ig.target.tolist() == [e.true for e in written_report.data.examples]
    assert trust.mistake_ig.values.shape == (len(mistakes), 1, 28, 28)
    median, worst = trust.completeness()
    assert median < 0.02 and worst < 0.1  # 32 trapezoid steps: close, and stated on the page
    page = written_report.html.read_text()
    assert f"{median:.2%}" in page and f"{worst:.2%}" in page


def test_temperature_is_fitted_on_training_images_only(written_report, trust, mnist):
    (train_images, _), (test_images, _) = mnist
    part = trust.held_out
    # The shared run kept no validation split: the last training images, said to be seen.
    assert part.seen_in_training and len(part.labels) == HELD_OUT_TRAINING
    assert part.first == len(train_images) - HELD_OUT_TRAINING
    assert np.array_equal(part.images, train_images[part.first:])
    assert trust.calibration.fit_count == HELD_OUT_TRAINING
    assert trust.calibration.before.counts.sum() == len(test_images)
    page = written_report.html.read_text()
    assert "the model saw during training" in page


def test_a_validation_split_is_used_when_the_run_kept_one(mnist):
    from mnist_cnn.checkpoint import RunMeta
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.model import get_architecture
    from mnist_cnn.train import split_validation

    images, labels = mnist[0]
    arch = get_architecture("lesson")
    part = held_out(RunMeta(arch, config=TrainConfig(validation_split=0.1)), images, labels)
    _, (val_images, val_labels) = split_validation(images, labels, 0.1)
    assert not part.seen_in_training and len(part.labels) == min(len(val_labels), HELD_OUT_MAX)
    assert np.array_equal(part.images, val_images[-len(part.labels):])
    assert np.array_equal(part.labels, val_labels[-len(part.labels):])
    # An imported run has no training configuration; its hyperparameters may say.
    small = held_out(RunMeta(arch, hyperparameters={"validation_split": 0.05}), images, labels)
    assert len(small.labels) == 3_000 and not small.seen_in_training
    assert held_out(RunMeta(arch), images, labels).seen_in_training


def test_temperature_minimises_the_held_out_nll(trained_run, trust):
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.device import to_tensors
    from mnist_cnn.evaluate import predict_logits

    model, _ = load_model(trained_run)
    x, y = to_tensors(trust.held_out.images, trust.held_out.labels, torch.device("cpu"), True)
    logits = predict_logits(model, x).double()
    t = trust.calibration.temperature

    def nll(temp: float) -> float:
        return torch.nn.functional.cross_entropy(logits / temp, y).item()

    assert nll(t) <= min(nll(t * 0.97), nll(t * 1.03), nll(1.0))


def test_calibration_json_matches_the_report(written_report, trust):
    saved = json.loads(written_report.calibration.read_text())
    assert written_report.calibration.parent == written_report.out_dir
    assert saved == json.loads(json.dumps(trust.to_json()))
    cal = trust.calibration
    assert saved["temperature"] == cal.temperature > 0
    assert 0 <= saved["not_sure_below"]["raw"] <= 1
    assert saved["test_ece"] == {"before": cal.before.ece, "after": cal.after.ece}
    assert saved["fitted_on"]["seen_in_training"] is True
    assert cal.after.ece < cal.before.ece  # scaling fitted on training images helps on test


def test_robustness_measured_on_the_stated_subset(written_report, trust, mnist):
    labels = mnist[1][1]
    sweep = trust.robustness
    assert sweep.count == ROBUSTNESS_IMAGES
    shown = written_report.data.predictions[:ROBUSTNESS_IMAGES]
    assert sweep.plain_accuracy == pytest.approx((shown == labels[:ROBUSTNESS_IMAGES]).mean())
    page = written_report.html.read_text()
    for rows in sweep.accuracy.values():
        for _, accuracy in rows:
            assert f"<td>{accuracy:.1%}</td>" in page
    md = written_report.markdown.read_text()
    assert "## How far do the answers hold? Robustness" in md
    assert f"first {ROBUSTNESS_IMAGES:,} test images" in md
