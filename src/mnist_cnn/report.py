"""The run report: figures (see figures.py), one index.html and a report.md.

`compute_report()` gathers the numbers (one pass of the model over the test set, the
mistakes, the filters, the feature maps; then saliency, calibration and robustness, see
report_trust.py); `write_report()` draws and writes them, with the calibration values in
calibration.json for other programs. The page and report.md are rendered by report_html.py.
The computed data rides along in the result, so tests can check every figure against the
model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_cnn.checkpoint import RunMeta
from mnist_cnn.errors import UsageError
from mnist_cnn.evaluate import Metrics
from mnist_cnn.predict import LayerOutput
from mnist_cnn.report_trust import TrustData
from mnist_cnn.summary import Summary

MISTAKES_SHOWN = 24  # three rows of eight in the grid
RIGHT_PER_CLASS = 2  # correct answers shown beside the mistakes: the first two of each class
MAP_KINDS = ("Conv2D", "MaxPooling2D", "AveragePooling2D")  # outputs shown as pictures


@dataclass(frozen=True)
class Mistake:
    index: int  # position in the test set
    true: int
    predicted: int
    probability: float  # the model's softmax probability for its prediction (wrong, for a
    # mistake; ReportData.right holds right answers in the same form)


@dataclass(frozen=True)
class Example:
    index: int  # position in the test set; one example per class
    true: int
    probabilities: np.ndarray  # (classes,)
    layers: list[LayerOutput]  # the conv and pooling layers' outputs, in order


@dataclass(frozen=True)
class ReportData:
    meta: RunMeta
    classes: tuple[str, ...]
    history: list[dict[str, float]]
    metrics: Metrics  # on the whole test set, from the one pass below
    predictions: np.ndarray  # (N,) predicted class of every test image
    test_images: np.ndarray  # (N, 28, 28) uint8
    test_labels: np.ndarray  # (N,)
    mistakes: list[Mistake]  # the most confident first
    right: list[Mistake]  # right answers: each class's first, then each class's second
    filters: np.ndarray  # (filters, kh, kw): the first convolution's kernels
    examples: list[Example]
    summary: Summary
    trust: TrustData  # saliency, calibration, robustness
    weights: str  # checkpoint.weights_digest of the model reported on


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    figures: dict[str, Path]  # "curves", "confusion", ..., "feature_maps_<class>" -> PNG
    html: Path
    markdown: Path
    calibration: Path  # calibration.json: temperature, "not sure" thresholds, ECEs
    meta: Path  # the run's model.json, which now carries the page's "not sure" line
    test_accuracy: float
    test_loss: float
    test_count: int
    data: ReportData = field(repr=False)


def compute_report(run_dir: str | Path, data_dir: str | Path | None = None) -> ReportData:
    """Every number the report shows, computed from the run and its dataset's test set."""
    from mnist_cnn import checkpoint, data
    from mnist_cnn.device import to_tensors, use_bf16
    from mnist_cnn.evaluate import metrics_from_logits, predict_logits
    from mnist_cnn.predict import Predictor
    from mnist_cnn.report_trust import compute_trust
    from mnist_cnn.summary import summarize

    predictor = Predictor.from_run(run_dir)
    meta = predictor.meta
    dataset = data.get_dataset(meta.dataset)
    # The training set too: the trust section calibrates on a held-out part of it.
    train, (images, labels) = data.load_data(dataset.name, data_dir, recorded=meta.data_dir)
    x, y = to_tensors(images, labels, torch.device("cpu"), channels_last=True)
    # In the run's own precision, as training and `evaluate` measure it: one test loss.
    bf16 = use_bf16(meta.timing.precision, torch.device("cpu"))
    logits = predict_logits(predictor.model, x, bf16=bf16).float()
    probabilities = torch.softmax(logits, dim=1).numpy()
    predictions = probabilities.argmax(1)
    metrics = metrics_from_logits(logits, y, len(dataset.classes))
    mistakes, right = _mistakes(probabilities, labels), _right(probabilities, labels)
    examples = _examples(predictor, images, labels, probabilities)
    trust = compute_trust(predictor.model, meta, train, (images, labels), logits,
                          [m.index for m in mistakes], [e.index for e in examples])
    return ReportData(
        meta=meta, classes=dataset.classes, history=checkpoint.read_history(run_dir),
        metrics=metrics, predictions=predictions, test_images=images, test_labels=labels,
        mistakes=mistakes, right=right, filters=predictor.conv1_filters(), examples=examples,
        summary=summarize(predictor.arch), trust=trust,
        weights=checkpoint.weights_digest(predictor.model.state_dict()))


def _mistakes(probabilities: np.ndarray, labels: np.ndarray) -> list[Mistake]:
    predictions = probabilities.argmax(1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:MISTAKES_SHOWN]
    return [Mistake(int(i), int(labels[i]), int(predictions[i]),
                    float(probabilities[i, predictions[i]])) for i in order]


def _right(probabilities: np.ndarray, labels: np.ndarray) -> list[Mistake]:
    """The first RIGHT_PER_CLASS correctly read test images of each class, by rank."""
    predictions = probabilities.argmax(1)
    firsts = [np.flatnonzero((labels == c) & (predictions == c))[:RIGHT_PER_CLASS]
              for c in range(probabilities.shape[1])]
    right = []
    for rank in range(RIGHT_PER_CLASS):  # a row of each class's first, then its second
        for found in firsts:
            if rank < len(found):
                i = int(found[rank])
                right.append(Mistake(i, int(labels[i]), int(labels[i]),
                                     float(probabilities[i, labels[i]])))
    return right


def _examples(predictor: Any, images: np.ndarray, labels: np.ndarray,
              probabilities: np.ndarray) -> list[Example]:
    """The first correctly classified test image of each class (the first at all if none is)."""
    correct = probabilities.argmax(1) == labels
    examples = []
    for cls in range(probabilities.shape[1]):
        candidates = np.flatnonzero((labels == cls) & correct)
        if not len(candidates):
            candidates = np.flatnonzero(labels == cls)
        if not len(candidates):
            continue
        index = int(candidates[0])
        layers = [out for out in predictor.activations(images[index]) if out.kind in MAP_KINDS]
        examples.append(Example(index, cls, probabilities[index], layers))
    return examples


def _draw(report: ReportData) -> dict[str, Any]:
    """Every figure, keyed by its file stem."""
    from mnist_cnn import figures
    from mnist_cnn.report_trust import draw_trust

    m, classes = report.metrics, report.classes
    drawn = {}
    if report.history:
        drawn["curves"] = figures.training_curves(report.history, m.loss, m.accuracy)
    drawn["confusion"] = figures.confusion_matrix(m.confusion, classes)
    drawn["mistakes"] = figures.mistakes_grid(
        report.test_images,
        [(e.index, classes[e.true], classes[e.predicted], e.probability) for e in report.mistakes])
    drawn["right"] = figures.correct_grid(
        report.test_images, [(e.index, classes[e.true], e.probability) for e in report.right])
    if len(report.filters):
        drawn["filters"] = figures.conv_filters(report.filters)
    arch = report.meta.architecture
    drawn["architecture"] = figures.architecture(
        report.summary.rows, [layer.detail() for layer in arch.layers], arch.input_shape,
        f"Architecture '{arch.name}': {report.summary.total_params:,} parameters")
    for ex in report.examples:
        predicted = int(ex.probabilities.argmax())
        title = (f"Feature maps of test image #{ex.index} (true class: {classes[ex.true]}); "
                 "each map scaled to its own maximum, dark = no response")
        answer = (f"The network's answer: {classes[predicted]} "
                  f"({ex.probabilities[predicted]:.1%})")
        drawn[f"feature_maps_{ex.true}"] = figures.feature_maps(
            report.test_images[ex.index], title, answer, ex.layers, ex.probabilities, classes)
    return drawn | draw_trust(report.trust, report.test_images, report.test_labels, classes)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 data_dir: str | Path | None = None) -> ReportResult:
    """Compute, draw and write the report for a run into `out_dir` (default `<run>/report`)."""
    from mnist_cnn.files import atomic_write, atomic_write_text
    from mnist_cnn.modelcard import model_card
    from mnist_cnn.report_html import render_html, render_markdown

    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "report"
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; choose another --out")
    report = compute_report(run_dir, data_dir)
    paths = {}
    for stem, fig in _draw(report).items():
        paths[stem] = out / f"{stem}.png"
        atomic_write(paths[stem], lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
    html_path, md_path, cal_path = out / "index.html", out / "report.md", out / "calibration.json"
    atomic_write_text(cal_path, json.dumps(report.trust.to_json(), indent=2) + "\n")
    atomic_write_text(out / "MODEL_CARD.md",
                      model_card(run_dir, confusion=report.metrics.confusion))
    atomic_write_text(html_path, render_html(report, paths, run_dir))
    atomic_write_text(md_path, render_markdown(report, paths, run_dir))
    m = report.metrics
    return ReportResult(out, paths, html_path, md_path, cal_path, _keep_calibration(
        Path(run_dir), report), m.accuracy, m.loss, m.count, report)


def _keep_calibration(run_dir: Path, report: ReportData) -> Path:
    """Put the "not sure" line into the run's model.json (atomically), where the page's
    export and server find it beside the weights it was chosen for."""
    from dataclasses import replace

    from mnist_cnn import checkpoint
    from mnist_cnn.errors import MnistCnnError

    meta = replace(checkpoint.read_meta(run_dir),
                   calibration=report.trust.for_page(report.weights))
    try:
        checkpoint.save_meta(run_dir, meta)
    except OSError as exc:
        raise MnistCnnError(f"{run_dir / checkpoint.META}: the report is written, but the "
                            f"\"not sure\" line cannot be saved here ({exc.strerror or exc})"
                            ) from None
    return run_dir / checkpoint.META
