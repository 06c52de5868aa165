"""The report's "can I trust it" part: which images are explained, which held-out images fit
the temperature, which test images are perturbed; then saliency, calibration, robustness.

The numbers come from saliency.py, calibration.py and robustness.py; this module only picks
their inputs and keeps the results together for the figures and the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mnist_cnn.calibration import NOT_SURE_ACCURACY, Calibration
from mnist_cnn.checkpoint import CalibrationMeta, RunMeta
from mnist_cnn.robustness import Sweep
from mnist_cnn.saliency import Attribution

SALIENCY_MISTAKES = 16  # the most confident mistakes explained: two rows of eight
HELD_OUT_MAX = 6000  # held-out images the temperature is fitted on (the last ones)
HELD_OUT_TRAINING = 5000  # without a validation split: the last training images
ROBUSTNESS_IMAGES = 500  # the first test images every perturbation is measured on
IG_STEPS = 32  # trapezoid steps in the report (the completeness error is shown beside it)


@dataclass(frozen=True)
class HeldOut:
    """The images the temperature and thresholds are fitted on, never the test set."""

    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,)
    first: int  # index of the first of them in the training set
    seen_in_training: bool  # True: a slice of the training set the model learned from


@dataclass(frozen=True)
class TrustData:
    mistakes: list[int]  # test indices explained, the most confident mistakes first
    mistake_ig: Attribution  # integrated gradients for the (wrong) predicted class
    examples: list[int]  # test indices of the per-class examples
    example_ig: Attribution  # the examples, integrated gradients for the predicted class
    example_gxi: Attribution  # the same examples, gradient x input
    held_out: HeldOut
    calibration: Calibration
    robustness: Sweep  # on the first ROBUSTNESS_IMAGES test images; image 0 is shown

    def to_json(self) -> dict[str, Any]:
        """calibration.json: the fitted values, where they were fitted, the test ECEs."""
        part = self.held_out
        return {"fitted_on": {"source": "training" if part.seen_in_training else "validation",
                              "seen_in_training": part.seen_in_training,
                              "first_training_index": part.first, "images": len(part.labels)},
                **self.calibration.to_dict()}

    def for_page(self, weights: str) -> CalibrationMeta:
        """model.json's "calibration": the raw "not sure" line, for the page's plain softmax;
        `weights` is checkpoint.weights_digest of the model it was fitted for."""
        cal, part = self.calibration, self.held_out
        return CalibrationMeta(cal.not_sure_raw, NOT_SURE_ACCURACY, cal.temperature,
                               "training" if part.seen_in_training else "validation",
                               len(part.labels), weights)

    def completeness(self) -> tuple[float, float]:
        """(median, max) relative completeness error of every integrated-gradients map."""
        errors = torch.cat([self.mistake_ig.completeness_error(),
                            self.example_ig.completeness_error()])
        return float(errors.median()), float(errors.max())


def held_out(meta: RunMeta, images: np.ndarray, labels: np.ndarray) -> HeldOut:
    """The run's validation split (the last fraction of the training set, Keras-style) when
    it kept one, else the last HELD_OUT_TRAINING training images, which it trained on."""
    from mnist_cnn.train import split_validation

    split = float(meta.config.validation_split if meta.config is not None
                  else meta.hyperparameters.get("validation_split") or 0.0)
    _, validation = split_validation(images, labels, split) if split > 0 else (None, None)
    if validation is not None:
        count, seen = min(len(validation[0]), HELD_OUT_MAX), False
    else:
        count, seen = min(len(images) // 2, HELD_OUT_TRAINING), True
    first = len(images) - count
    return HeldOut(images[first:], labels[first:], first, seen)


def compute_trust(model: torch.nn.Module, meta: RunMeta,
                  train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                  test_logits: torch.Tensor, mistakes: list[int],
                  example_indices: list[int]) -> TrustData:
    """Saliency for the mistakes and examples, calibration on held-out images, robustness on
    the first test images; `test_logits` are the model's on the whole test set."""
    from mnist_cnn.calibration import calibrate
    from mnist_cnn.device import to_tensors
    from mnist_cnn.evaluate import predict_logits
    from mnist_cnn.robustness import sweep
    from mnist_cnn.saliency import gradient_x_input, integrated_gradients

    images, labels = test
    cpu = torch.device("cpu")
    shown = mistakes[:SALIENCY_MISTAKES]
    x_mistakes, _ = to_tensors(images[shown], labels[shown], cpu, channels_last=False)
    x_examples, _ = to_tensors(images[example_indices], labels[example_indices], cpu,
                               channels_last=False)
    part = held_out(meta, *train)
    x_fit, y_fit = to_tensors(part.images, part.labels, cpu, channels_last=True)
    x_sub, y_sub = to_tensors(images[:ROBUSTNESS_IMAGES], labels[:ROBUSTNESS_IMAGES], cpu,
                              channels_last=True)
    return TrustData(
        mistakes=shown, mistake_ig=integrated_gradients(model, x_mistakes, steps=IG_STEPS),
        examples=list(example_indices),
        example_ig=integrated_gradients(model, x_examples, steps=IG_STEPS),
        example_gxi=gradient_x_input(model, x_examples), held_out=part,
        calibration=calibrate(predict_logits(model, x_fit), y_fit, test_logits,
                              torch.tensor(labels, dtype=torch.int64)),
        robustness=sweep(model, x_sub, y_sub, keep=1))


def draw_trust(trust: TrustData, images: np.ndarray, labels: np.ndarray,
               classes: tuple[str, ...]) -> dict[str, Any]:
    """The five figures, keyed by file stem."""
    from mnist_cnn import figures_trust as ft
    from mnist_cnn.robustness import UNITS

    ig = trust.mistake_ig.values[:, 0].numpy()
    cells = [(ft.overlay(images[i], ig[k]), f"true: {classes[labels[i]]}\npredicted: "
              f"{classes[int(trust.mistake_ig.target[k])]}", ft.WRONG)
             for k, i in enumerate(trust.mistakes)]
    rows = [("", cells[i:i + 8]) for i in range(0, len(cells), 8)]
    drawn = {"saliency_mistakes": ft.tiled(
        rows or [("", [(np.ones((*images.shape[1:], 3)), "no mistakes", ft.PLAIN)])],
        "Integrated gradients of the most confident mistakes, for the wrong answer")}
    digits = [images[i] for i in trust.examples]
    answers = [f"answer: {classes[int(c)]}" for c in trust.example_ig.target]
    rows = [("input", [(ft.ink(d), a, ft.PLAIN) for d, a in zip(digits, answers, strict=True)])]
    for name, attribution in (("integrated\ngradients", trust.example_ig),
                              ("gradient\nx input", trust.example_gxi)):
        rows.append((name, [(ft.overlay(d, a[0]), "", ft.PLAIN) for d, a
                            in zip(digits, attribution.values.numpy(), strict=True)]))
    drawn["saliency_examples"] = ft.tiled(
        rows, "One correct test image per class: what pushed the network to its answer")
    cal = trust.calibration
    drawn["reliability"] = ft.reliability_diagram(cal.before, cal.after, cal.temperature,
                                                  int(cal.before.counts.sum()))
    sweep = trust.robustness
    drawn["robustness"] = ft.robustness_curves(sweep.accuracy, UNITS, sweep.count)
    drawn["robustness_examples"] = ft.tiled(
        _perturbed_rows(sweep, int(labels[0]), classes),
        f"Test image #0 (class {classes[labels[0]]}) under every perturbation, with the "
        "network's answer (red: wrong)")
    return drawn


def _perturbed_rows(sweep: Sweep, label: int, classes: tuple[str, ...]) -> list[Any]:
    """For each family: (family, [(image, "<level> <unit>\\nanswer: <class>", colour), ...])
    for the first image of the sweep."""
    from mnist_cnn import figures_trust as ft
    from mnist_cnn.robustness import UNITS

    rows = []
    for family, levels in sweep.accuracy.items():
        cells = []
        for level, _ in levels:
            answer = int(sweep.predictions[(family, level)][0])
            cells.append((ft.ink(sweep.samples[(family, level)][0]),
                          f"{level:g} {UNITS[family]}\nanswer: {classes[answer]}",
                          ft.WRONG if answer != label else ft.RIGHT))
        rows.append((family.replace("_", " "), cells))
    return rows
