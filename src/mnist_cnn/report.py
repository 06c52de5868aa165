"""The run report: figures (see figures.py), one index.html and a report.md.

`compute_report()` gathers the numbers (one pass of the model over the test set, the
mistakes, the filters, the feature maps); `write_report()` draws and writes them. The
computed data rides along in the result, so tests can check every figure against the model.
"""

from __future__ import annotations

import html
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
from mnist_cnn.summary import Summary

MISTAKES_SHOWN = 24  # three rows of eight in the grid
MAP_KINDS = ("Conv2D", "MaxPooling2D", "AveragePooling2D")  # outputs shown as pictures


@dataclass(frozen=True)
class Mistake:
    index: int  # position in the test set
    true: int
    predicted: int
    probability: float  # the model's softmax probability for its (wrong) prediction


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
    mistakes: list[Mistake]  # the most confident first
    filters: np.ndarray  # (filters, kh, kw): the first convolution's kernels
    examples: list[Example]
    summary: Summary


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    figures: dict[str, Path]  # "curves", "confusion", ..., "feature_maps_<class>" -> PNG
    html: Path
    markdown: Path
    test_accuracy: float
    test_loss: float
    test_count: int
    data: ReportData = field(repr=False)


def compute_report(run_dir: str | Path, data_dir: str | Path | None = None) -> ReportData:
    """Every number the report shows, computed from the run and its dataset's test set."""
    from mnist_cnn import checkpoint, data
    from mnist_cnn.device import to_tensors
    from mnist_cnn.evaluate import metrics_from_logits, predict_logits
    from mnist_cnn.predict import Predictor
    from mnist_cnn.summary import summarize

    predictor = Predictor.from_run(run_dir)
    meta = predictor.meta
    dataset = data.get_dataset(meta.dataset)
    _, (images, labels) = data.load_data(dataset.name, data_dir)
    x, y = to_tensors(images, labels, torch.device("cpu"), channels_last=True)
    logits = predict_logits(predictor.model, x).float()
    probabilities = torch.softmax(logits, dim=1).numpy()
    predictions = probabilities.argmax(1)
    metrics = metrics_from_logits(logits, y, len(dataset.classes))
    return ReportData(
        meta=meta, classes=dataset.classes, history=checkpoint.read_history(run_dir),
        metrics=metrics, predictions=predictions, test_images=images,
        mistakes=_mistakes(probabilities, labels), filters=predictor.conv1_filters(),
        examples=_examples(predictor, images, labels, probabilities),
        summary=summarize(predictor.arch))


def _mistakes(probabilities: np.ndarray, labels: np.ndarray) -> list[Mistake]:
    predictions = probabilities.argmax(1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:MISTAKES_SHOWN]
    return [Mistake(int(i), int(labels[i]), int(predictions[i]),
                    float(probabilities[i, predictions[i]])) for i in order]


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

    m, classes = report.metrics, report.classes
    drawn = {}
    if report.history:
        drawn["curves"] = figures.training_curves(report.history, m.loss, m.accuracy)
    drawn["confusion"] = figures.confusion_matrix(m.confusion, classes)
    drawn["mistakes"] = figures.mistakes_grid(
        report.test_images,
        [(e.index, classes[e.true], classes[e.predicted], e.probability) for e in report.mistakes])
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
    return drawn


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 data_dir: str | Path | None = None) -> ReportResult:
    """Compute, draw and write the report for a run into `out_dir` (default `<run>/report`)."""
    from mnist_cnn.files import atomic_write, atomic_write_text

    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "report"
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; choose another --out")
    report = compute_report(run_dir, data_dir)
    paths = {}
    for stem, fig in _draw(report).items():
        paths[stem] = out / f"{stem}.png"
        atomic_write(paths[stem], lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
    html_path, md_path = out / "index.html", out / "report.md"
    atomic_write_text(html_path, render_html(report, paths, run_dir))
    atomic_write_text(md_path, render_markdown(report, paths, run_dir))
    m = report.metrics
    return ReportResult(out, paths, html_path, md_path, m.accuracy, m.loss, m.count, report)


def headline(report: ReportData) -> list[tuple[str, str]]:
    """The numbers a reader wants first, as (label, value) pairs."""
    meta, m = report.meta, report.metrics
    hyper, timing = meta.hyperparameters, meta.timing
    wrong = int(m.count - np.trace(m.confusion))
    rows = [("dataset", meta.dataset),
            ("architecture", f"{meta.architecture.name} "
                             f"({report.summary.total_params:,} parameters)"),
            ("test accuracy", f"{m.accuracy:.2%} ({m.count - wrong:,} of {m.count:,} images)"),
            ("test loss", f"{m.loss:.4f}"), ("test mistakes", f"{wrong:,}")]
    if report.history:
        last = report.history[-1]
        rows.append(("epochs", str(int(last["epoch"]))))
        if "val_accuracy" in last:
            rows.append(("validation accuracy", f"{last['val_accuracy']:.2%}"))
    rows += [(label, str(value)) for label, value in (
        ("recipe", meta.recipe), ("batch size", hyper.get("batch_size")),
        ("learning rate", hyper.get("lr"))) if value is not None]
    if timing.train_seconds is not None:
        rows.append(("training time", f"{timing.train_seconds:.1f} s on "
                                      f"{timing.device or '?'} ({timing.precision})"))
    return rows + [("trained", meta.date or "?")]


CAPTIONS = {
    "curves": "Training curves: loss and accuracy after each epoch on the training images "
              "(and the held-out validation images when the run kept some); the dotted line "
              "is the final model on the test set.",
    "confusion": "Confusion matrix on the test set: row = true class, column = the model's "
                 "answer; the diagonal is right, everything else a mistake. Right: each "
                 "class's accuracy.",
    "mistakes": "The test images the model got wrong with the highest confidence.",
    "filters": "The first convolution's learned 3x3 filters: each slides over the digit and "
               "responds where the ink matches its pattern (red weights add, blue subtract).",
    "architecture": "The network, input to output: each block's height follows the map's "
                    "size and its width the number of channels; parameters under each layer.",
    "feature_maps": "What each conv and pooling layer sees for one test image: each small "
                    "square is one filter's response map (bright = strong response); pooling "
                    "halves the size. Top: the network's probability for each class.",
}


def _caption(stem: str) -> str:
    return CAPTIONS["feature_maps" if stem.startswith("feature_maps") else stem]


def render_html(report: ReportData, paths: dict[str, Path], run_dir: str | Path) -> str:
    """A self-contained page: images by relative path, so it opens from disk."""
    esc = html.escape
    table = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                      for k, v in headline(report))
    figures = "\n".join(
        f'<figure id="{stem}"><img src="{esc(path.name)}" alt="{esc(stem)}">'
        f"<figcaption>{esc(_caption(stem))}</figcaption></figure>"
        for stem, path in paths.items() if not stem.startswith("feature_maps"))
    maps = [(stem, path) for stem, path in paths.items() if stem.startswith("feature_maps")]
    if maps:  # ten tall figures: the first open, the others one click away
        figures += (f"\n<h2>Feature maps, one test image per class</h2>\n"
                    f"<p>{esc(CAPTIONS['feature_maps'])}</p>\n")
        figures += "\n".join(
            f'<details id="{stem}"{" open" if i == 0 else ""}><summary>class '
            f'{esc(report.classes[int(stem.rsplit("_", 1)[1])])}</summary>'
            f'<img src="{esc(path.name)}" alt="{esc(stem)}"></details>'
            for i, (stem, path) in enumerate(maps))
    meta = {k: v for k, v in report.meta.to_dict().items() if k != "architecture"}
    return _PAGE.format(
        title=esc(f"mnist-cnn report: {Path(run_dir).name}"), table=table, figures=figures,
        summary=esc(_summary_text(report)), meta=esc(json.dumps(meta, indent=2)))


def _summary_text(report: ReportData) -> str:
    from mnist_cnn.summary import render_keras

    return render_keras(report.summary)


def render_markdown(report: ReportData, paths: dict[str, Path], run_dir: str | Path) -> str:
    """report.md: the headline numbers, then the figures by relative path."""
    lines = [f"# mnist-cnn report: {Path(run_dir).name}", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in headline(report)]
    lines += ["", "```", _summary_text(report).rstrip(), "```", ""]
    lines += [f"![{stem}]({path.name})\n\n{_caption(stem)}\n" for stem, path in paths.items()]
    return "\n".join(lines)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 0.25em 0.8em; text-align: left; }}
tr:nth-child(odd) {{ background: #f3f3f3; }}
figure {{ margin: 2.5em 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ color: #444; margin-top: 0.4em; }}
summary {{ cursor: pointer; font-weight: bold; margin: 0.6em 0; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style></head><body>
<h1>{title}</h1>
<table>
{table}
</table>
<h2>Model summary</h2>
<pre>{summary}</pre>
<h2>Figures</h2>
{figures}
<h2>Run metadata (model.json)</h2>
<pre>{meta}</pre>
</body></html>
"""
