"""Calibration: ECE by hand, temperature recovered from synthetic logits, the "not sure"
threshold by its rule, and nothing fitted from the test set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mnist_cnn.calibration import (
    BINS,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    not_sure_threshold,
    reliability,
)


def test_ece_of_a_small_example_computed_by_hand():
    conf = np.array([0.95, 0.95, 0.85, 0.5, 0.5, 0.3])
    right = np.array([1, 0, 1, 1, 0, 0])
    # 15 bins of width 1/15: 0.95 -> (14/15, 1], 0.85 -> (12/15, 13/15], 0.5 -> (7/15, 8/15],
    # 0.3 -> (4/15, 5/15].  |acc - conf| weighted by the share of images in the bin:
    by_hand = (2 / 6 * abs(0.5 - 0.95) + 1 / 6 * abs(1 - 0.85) + 2 / 6 * abs(0.5 - 0.5)
               + 1 / 6 * abs(0 - 0.3))
    assert by_hand == pytest.approx(0.225)
    assert expected_calibration_error(conf, right) == pytest.approx(by_hand, abs=1e-12)
    rel = reliability(conf, right)
    assert BINS == 15 and rel.counts.tolist() == [0] * 4 + [1] + [0] * 2 + [2] + [0] * 4 + [1, 0, 2]


def test_bins_are_closed_on_the_right():
    edges = np.linspace(0, 1, BINS + 1)
    rel = reliability(np.array([edges[1], edges[1] + 1e-9, 1.0, 0.0]), np.ones(4))
    assert rel.counts[0] == 2 and rel.counts[1] == 1 and rel.counts[-1] == 1


def test_a_calibrated_model_has_zero_ece_and_an_overconfident_one_does_not():
    conf = np.full(10, 0.8)
    assert expected_calibration_error(conf, np.array([1] * 8 + [0] * 2)) == pytest.approx(0)
    assert expected_calibration_error(conf, np.array([1] * 5 + [0] * 5)) == pytest.approx(0.3)


def _synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits z with labels drawn from softmax(z): perfectly calibrated at T = 1."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 10, generator=gen, dtype=torch.float64) * 3
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=gen)[:, 0]
    return z, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_fit_recovers_a_known_temperature(true_t):
    z, labels = _synthetic(20_000, seed=1)
    # A model that reports z * T has to be divided by T to be calibrated again.
    fitted = fit_temperature(z * true_t, labels)
    assert fitted == pytest.approx(true_t, rel=0.04)
    assert fit_temperature(z * true_t, labels) == fitted  # deterministic


def test_temperature_fit_minimises_the_nll():
    z, labels = _synthetic(5_000, seed=2)
    logits = z * 1.7
    t = fit_temperature(logits, labels)

    def nll(temp: float) -> float:
        return torch.nn.functional.cross_entropy(logits / temp, labels).item()

    assert nll(t) <= min(nll(t * 0.98), nll(t * 1.02), nll(1.0))


def test_not_sure_threshold_follows_its_rule():
    conf = np.array([0.2, 0.35, 0.5, 0.6, 0.7] + [0.9] * 20)
    right = np.array([0, 1, 0, 1, 1] + [1] * 20)
    # Least confident groups: 0/1, 1/2, 1/3, 2/4, 3/5 right (all under 90%); with the twenty
    # at 0.9 (a tie: all or none) 23/25 = 92%. So t lies between 0.7 and 0.9.
    assert not_sure_threshold(conf, right) == pytest.approx(0.8)
    assert not_sure_threshold(conf, np.ones(25)) == 0.0  # never wrong: never unsure
    everything = not_sure_threshold(conf, np.zeros(25))  # always wrong: always unsure
    assert everything > 0.9 and np.all(conf < everything)


def test_calibrate_fits_on_held_out_data_only():
    fit_logits, fit_labels = _synthetic(4_000, seed=3)
    test_logits, test_labels = _synthetic(3_000, seed=4)
    fit_logits, test_logits = fit_logits * 2, test_logits * 2
    real = calibrate(fit_logits, fit_labels, test_logits, test_labels)
    # The test set replaced by garbage (NaN logits, other labels): the fitted values are
    # the same to the last bit; only the measurements on the test set change.
    poisoned = calibrate(fit_logits, fit_labels, torch.full_like(test_logits, math.nan),
                         (test_labels + 1) % 10)
    for field in ("temperature", "not_sure_raw", "not_sure_calibrated", "fit_count"):
        assert getattr(poisoned, field) == getattr(real, field), field
    assert real.fit_count == 4_000
    assert real.temperature == pytest.approx(2.0, rel=0.06)
    assert real.after.ece < real.before.ece
    assert real.before.counts.sum() == real.after.counts.sum() == 3_000


def test_calibration_json_shape():
    fit_logits, fit_labels = _synthetic(1_000, seed=5)
    data = calibrate(fit_logits, fit_labels, fit_logits, fit_labels).to_dict()
    assert set(data) >= {"temperature", "not_sure_below", "test_ece", "reliability"}
    assert data["not_sure_below"]["target_accuracy"] == 0.9
    assert len(data["reliability"]["before"]["counts"]) == BINS
