"""Keras-style console output: `Epoch 1/5`, the progress bar, the evaluation line.

On a terminal the bar is redrawn in place (at most every 0.1 s); elsewhere (a log file, CI)
each epoch prints one final line, as Keras does.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import torch

BAR_WIDTH = 30
REDRAW_S = 0.1


def format_per_step(seconds_per_step: float) -> str:
    """Keras' time-per-step unit: s, ms or us."""
    if seconds_per_step >= 1:
        return f"{seconds_per_step:.0f}s/step"
    if seconds_per_step >= 1e-3:
        return f"{seconds_per_step * 1e3:.0f}ms/step"
    return f"{seconds_per_step * 1e6:.0f}us/step"


def progress_bar(current: int, target: int) -> str:
    """`1875/1875 [==============================]` with Keras' arrow while in progress."""
    digits = len(str(target))
    filled = int(BAR_WIDTH * current / target)
    bar = "=" * max(filled - 1, 0)
    if filled > 0:
        bar += ">" if current < target else "="
    return f"{current:{digits}d}/{target} [{bar}{'.' * (BAR_WIDTH - filled)}]"


def format_logs(logs: dict[str, float], keys: tuple[str, ...] = ("loss", "accuracy")) -> str:
    """` - loss: 0.1432 - accuracy: 0.9556` (and the val_ versions), for the `keys` asked for."""
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items()
                   if k.removeprefix("val_") in keys)


def eval_line(batches: int, seconds: float, loss: float, accuracy: float) -> str:
    """What `model.evaluate(..., verbose=2)` prints: `313/313 - 1s - loss: ... - accuracy: ...`."""
    return f"{batches}/{batches} - {seconds:.0f}s - loss: {loss:.4f} - accuracy: {accuracy:.4f}"


class KerasProgress:
    """A train.Reporter that prints what Keras' fit() prints: verbose=1 a progress bar
    (redrawn in place on a terminal, the final line otherwise), verbose=2 one line an
    epoch; `metrics` are the logs shown (Keras shows only the compiled metrics)."""

    def __init__(self, stream: TextIO | None = None, verbose: int = 1,
                 metrics: tuple[str, ...] = ("loss", "accuracy")):
        self.stream = stream or sys.stdout
        self.verbose, self.keys = verbose, metrics
        self.live = verbose == 1 and self.stream.isatty()
        self._start = self._last_draw = 0.0
        self._steps = 1
        self._drawn = 0  # length of the line currently on screen

    def epoch_begin(self, epoch: int, epochs: int, steps: int) -> None:
        print(f"Epoch {epoch}/{epochs}", file=self.stream, flush=True)
        self._start = self._last_draw = time.perf_counter()
        self._steps = steps

    def step(self, step: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last_draw < REDRAW_S and step < self._steps:
            return
        self._last_draw = now
        elapsed = now - self._start
        eta = elapsed / step * (self._steps - step)
        logs = {"loss": loss_sum.item() / seen, "accuracy": correct.item() / seen}
        line = f"{progress_bar(step, self._steps)} - ETA: {eta:.0f}s{format_logs(logs, self.keys)}"
        self._redraw(line)
        self.stream.flush()

    def _redraw(self, line: str) -> None:
        self.stream.write("\r" + line.ljust(self._drawn))
        self._drawn = len(line)

    def epoch_end(self, logs: dict[str, float], seconds: float, steps: int) -> None:
        per_step = format_per_step(seconds / steps)
        if self.verbose == 2:
            line = (f"{steps}/{steps} - {seconds:.0f}s{format_logs(logs, self.keys)} - "
                    f"{seconds:.0f}s/epoch - {per_step}")
        else:
            line = (f"{progress_bar(steps, steps)} - {seconds:.0f}s "
                    f"{per_step}{format_logs(logs, self.keys)}")
        if self.live:
            self._redraw(line)
            self._drawn = 0
        else:
            self.stream.write(line)
        self.stream.write("\n")
        self.stream.flush()


def train_summary(outcome) -> str:
    """What `mnist-cnn train` prints after the epochs: Keras' evaluate line, then the run,
    and what a reader could misread: a --max-steps stop, label smoothing in the loss."""
    test, result = outcome.test, outcome.result
    hyper = result.hyperparameters
    batches = -(-test.count // hyper["batch_size"])
    lines = [eval_line(batches, outcome.test_seconds, test.loss, test.accuracy), ""]
    if result.steps < outcome.planned_steps:
        last = int(result.history[-1]["epoch"]) if result.history else 1
        lines.append(f"Stopped by --max-steps {hyper['max_steps']} in epoch {last} of "
                     f"{hyper['epochs']} ({result.steps:,} of {outcome.planned_steps:,} "
                     "steps).")
    if hyper.get("label_smoothing"):
        lines.append(f"The training loss includes label smoothing {hyper['label_smoothing']} "
                     "and is averaged over the epoch while the weights change; the test loss "
                     "is plain cross-entropy of the final weights, so it is lower.")
    lines += [f"Test accuracy {test.accuracy:.2%} after {result.train_seconds:.1f} s of "
              f"training ({result.device}, {result.precision}).",
              f"Saved the run to {outcome.run_dir}/"]
    return "\n".join(lines)


def metrics_table(dataset: str, classes: tuple[str, ...], metrics) -> str:
    """`mnist-cnn evaluate`'s table: headline, per-class report, confusion matrix."""
    lines = [f"{dataset} test set, {metrics.count} images: "
             f"loss {metrics.loss:.4f}, accuracy {metrics.accuracy:.2%}", "",
             f"{'class':>14} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for name, row in zip(classes, metrics.per_class(), strict=True):
        lines.append(f"{name:>14} {row['precision']:9.4f} {row['recall']:9.4f} "
                     f"{row['f1']:9.4f} {row['support']:8d}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    width = max(len(str(metrics.confusion.max())), 4)
    lines.append("      " + "".join(f"{j:>{width + 1}}" for j in range(len(classes))))
    for i, row in enumerate(metrics.confusion):
        lines.append(f"{i:>5} " + "".join(f"{v:>{width + 1}}" for v in row))
    return "\n".join(lines)


def bench_table(report) -> str:
    """`mnist-cnn bench`'s table (bench.BenchReport)."""
    m = report.machine
    lines = [f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} "
             f"threads){', ' + m['cuda'] if m['cuda'] else ''}, {m['date']}", "",
             f"{'recipe':<20} {'epochs':>6} {'batch':>5} {'prec':>5} {'train s':>8} "
             f"{'img/s':>8} {'test acc (mean)':>16} {'runs':>4}"]
    for f in report.recipes + ([report.peer] if report.peer else []):
        med = f.medians()
        lines.append(f"{f.recipe:<20} {f.epochs:>6} {f.batch_size:>5} {f.precision:>5} "
                     f"{med['train_seconds_median']:>8.2f} "
                     f"{med['images_per_second_median']:>8.0f} "
                     f"{med['test_accuracy_mean']:>15.2%} {len(f.train_seconds):>4}")
    lines += ["", "train s, img/s: medians; test accuracy: mean over the runs (seeds 0..N-1)."]
    for precision, seconds in (report.eval_seconds or {}).items():
        lines.append(f"evaluate 10,000 test images, {precision}: {seconds:.3f} s (median of 7)")
    if report.latency_ms is not None:
        lines.append(f"single-image predict: p50 {report.latency_ms['p50']:.3f} ms, "
                     f"p99 {report.latency_ms['p99']:.3f} ms (1,000 calls)")
    return "\n".join(lines)


class DownloadProgress:
    """Download progress on stderr: a live bar on a terminal, one line per file otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, url: str, done: int, total: int | None) -> None:
        if not self.tty:
            if done == 0:
                print(f"downloading {url}", file=sys.stderr)
            return
        name, size = url.rsplit("/", 1)[-1], f"/{total / 1e6:.1f}" if total else ""
        filled = int(30 * done / total) if total else 0
        print(f"\r{name} [{'=' * filled:<30}] {done / 1e6:.1f}{size} MB", end="",
              file=sys.stderr, flush=True)
        if total and done >= total:
            print(file=sys.stderr)


def sweep_table(rows, limit: int = 20) -> str:
    """The sweep's trials, best validation accuracy first: each trial's settings, its
    validation accuracy (the objective) and its test accuracy (information only)."""
    keys = sorted({k for r in rows for k in r.params})
    head = ["trial", "state", "val acc", "test acc", "train s", *keys]
    body = [[str(r.number), r.state.lower(),
             "" if r.val_accuracy is None else f"{100 * r.val_accuracy:.2f}%",
             "" if r.test_accuracy is None else f"{100 * r.test_accuracy:.2f}%",
             "" if r.train_seconds is None else f"{r.train_seconds:.1f}",
             *(_setting(r.params.get(k)) for k in keys)] for r in rows[:limit]]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, *body]]
    more = f"\n... and {len(rows) - limit} more (see trials.csv)" if len(rows) > limit else ""
    return "\n".join(lines) + more


def _setting(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)
