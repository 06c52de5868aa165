"""How far to trust a probability: calibration error, temperature scaling, a "not sure" line.

- expected calibration error (ECE): confidences (the top probability) in 15 equal-width bins
  ((0, 1/15], ..., (14/15, 1]); ECE = sum over bins of |bin| / n * |accuracy - mean
  confidence|. The same bins are the reliability diagram's.
- temperature scaling: one T > 0 that minimises the negative log-likelihood of
  softmax(logits / T) on held-out data; T > 1 softens an overconfident model, T < 1
  sharpens an underconfident one. The answers (argmax) never change.
- the "not sure" threshold: the highest confidence t such that, of the held-out images
  answered with a confidence below t, fewer than 90% are right. Below t the model's answer
  is more likely wrong than the 90% a reader expects; 0 when no such group exists.

`calibrate()` takes the held-out logits to fit on and the test logits to measure on as two
separate arguments: the fitted values come from the first alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

BINS = 15  # the standard choice for ECE (Guo et al., 2017)
NOT_SURE_ACCURACY = 0.90  # below the threshold, answers are right less often than this
LOG_T_RANGE = (math.log(0.05), math.log(20.0))  # the search interval for log T
SEARCH_TOL = 1e-7  # golden-section stops when the log-T interval is this narrow


@dataclass(frozen=True)
class Reliability:
    """Per-bin accuracy and confidence: the reliability diagram, and the ECE it implies."""

    edges: np.ndarray  # (BINS + 1,) 0, 1/15, ..., 1
    counts: np.ndarray  # (BINS,) images per bin
    accuracy: np.ndarray  # (BINS,) fraction right per bin (0 where empty)
    confidence: np.ndarray  # (BINS,) mean top probability per bin (0 where empty)
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return {"ece": self.ece, "edges": self.edges.tolist(), "counts": self.counts.tolist(),
                "accuracy": self.accuracy.tolist(), "confidence": self.confidence.tolist()}


def reliability(confidences: np.ndarray, correct: np.ndarray, bins: int = BINS) -> Reliability:
    """Bin (N,) top probabilities with their (N,) right/wrong flags; bins are (lo, hi]."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidences.shape != correct.shape or confidences.ndim != 1 or not len(confidences):
        raise ValueError("confidences and correct must be two equal, non-empty 1-D arrays")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # (lo, hi]: a confidence of exactly 1/15 belongs to the first bin, 0 to the first too.
    index = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    safe = np.maximum(counts, 1)
    accuracy = np.bincount(index, weights=correct, minlength=bins) / safe
    confidence = np.bincount(index, weights=confidences, minlength=bins) / safe
    ece = float(np.sum(counts / len(confidences) * np.abs(accuracy - confidence)))
    return Reliability(edges, counts, accuracy, confidence, ece)


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray,
                               bins: int = BINS) -> float:
    """ECE with `bins` equal-width confidence bins (see the module's docstring)."""
    return reliability(confidences, correct, bins).ece


def _nll(logits: torch.Tensor, labels: torch.Tensor, log_t: float) -> float:
    return F.cross_entropy(logits / math.exp(log_t), labels).item()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising NLL(softmax(logits / T), labels): golden-section search on log T.

    The NLL is convex in 1/T, so it has one minimum along log T and the search finds it;
    the search is deterministic (no random start, no learning rate).
    """
    logits = torch.as_tensor(logits, dtype=torch.float64)
    labels = torch.as_tensor(labels, dtype=torch.int64)
    lo, hi = LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, labels, a), _nll(logits, labels, b)
    while hi - lo > SEARCH_TOL:
        if fa <= fb:  # the minimum lies in [lo, b]
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(logits, labels, a)
        else:  # in [a, hi]
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, labels, b)
    return math.exp((lo + hi) / 2)


def not_sure_threshold(confidences: np.ndarray, correct: np.ndarray,
                       target: float = NOT_SURE_ACCURACY) -> float:
    """The highest t such that the images with confidence < t are right less than `target`
    of the time; 0.0 when every such group is right at least that often."""
    order = np.argsort(confidences, kind="stable")
    conf = np.asarray(confidences, dtype=np.float64)[order]
    right = np.cumsum(np.asarray(correct, dtype=np.float64)[order])
    # Group k: the k + 1 least confident images. Only cuts between two different
    # confidences are thresholds ("below t" cannot split equal confidences).
    accuracy = right / np.arange(1, len(conf) + 1)
    cut = np.flatnonzero((accuracy < target) & np.append(conf[1:] > conf[:-1], True))
    if not len(cut):
        return 0.0
    k = int(cut[-1])
    # t sits just above the last image of the group: halfway to the next confidence.
    if k + 1 == len(conf):
        return float(np.nextafter(conf[k], np.inf))
    return float((conf[k] + conf[k + 1]) / 2)


@dataclass(frozen=True)
class Calibration:
    """Temperature and threshold fitted on held-out data; ECE measured on the test set."""

    temperature: float
    fit_count: int  # held-out images the temperature and thresholds were fitted on
    not_sure_raw: float  # threshold on softmax(logits)
    not_sure_calibrated: float  # threshold on softmax(logits / T)
    before: Reliability  # test set, softmax(logits)
    after: Reliability  # test set, softmax(logits / T)
    # How the raw threshold splits the test set: count below it, accuracy below and above.
    test_flagged: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "fit_images": self.fit_count,
                "bins": len(self.before.counts),
                "not_sure_below": {"raw": self.not_sure_raw,
                                   "calibrated": self.not_sure_calibrated,
                                   "target_accuracy": NOT_SURE_ACCURACY},
                "test_ece": {"before": self.before.ece, "after": self.after.ece},
                "test_not_sure": {"threshold": "raw", **self.test_flagged},
                "reliability": {"before": self.before.to_dict(),
                                "after": self.after.to_dict()}}


def _top(logits: torch.Tensor, labels: torch.Tensor,
         temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(top probability, answer is right) of every image, as float64 / bool arrays."""
    probabilities = torch.softmax(logits.double() / temperature, dim=1)
    top, answer = probabilities.max(1)
    return top.numpy(), (answer == labels).numpy()


def calibrate(fit_logits: torch.Tensor, fit_labels: torch.Tensor,
              test_logits: torch.Tensor, test_labels: torch.Tensor) -> Calibration:
    """Fit T and the "not sure" thresholds on (fit_logits, fit_labels) only, then measure
    ECE before and after on the test set and how the raw threshold splits it."""
    fit_labels = torch.as_tensor(fit_labels, dtype=torch.int64)
    test_labels = torch.as_tensor(test_labels, dtype=torch.int64)
    temperature = fit_temperature(fit_logits, fit_labels)
    raw = not_sure_threshold(*_top(fit_logits, fit_labels))
    calibrated = not_sure_threshold(*_top(fit_logits, fit_labels, temperature))
    conf, right = _top(test_logits, test_labels)
    flagged = conf < raw
    return Calibration(
        temperature=temperature, fit_count=len(fit_labels), not_sure_raw=raw,
        not_sure_calibrated=calibrated, before=reliability(conf, right),
        after=reliability(*_top(test_logits, test_labels, temperature)),
        test_flagged={"count": int(flagged.sum()),
                      "accuracy_flagged": float(right[flagged].mean()) if flagged.any() else None,
                      "accuracy_rest": float(right[~flagged].mean()) if (~flagged).any()
                      else None})
