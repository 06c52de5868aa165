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


def format_logs(logs: dict[str, float]) -> str:
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items() if k != "epoch")


def eval_line(batches: int, seconds: float, loss: float, accuracy: float) -> str:
    """What `model.evaluate(..., verbose=2)` prints: `313/313 - 1s - loss: ... - accuracy: ...`."""
    return f"{batches}/{batches} - {seconds:.0f}s - loss: {loss:.4f} - accuracy: {accuracy:.4f}"


class KerasProgress:
    """A train.Reporter that prints what Keras' fit(verbose=1) prints."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
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
        line = f"{progress_bar(step, self._steps)} - ETA: {eta:.0f}s{format_logs(logs)}"
        self._redraw(line)
        self.stream.flush()

    def _redraw(self, line: str) -> None:
        self.stream.write("\r" + line.ljust(self._drawn))
        self._drawn = len(line)

    def epoch_end(self, logs: dict[str, float], seconds: float, steps: int) -> None:
        line = (f"{progress_bar(steps, steps)} - {seconds:.0f}s "
                f"{format_per_step(seconds / steps)}{format_logs(logs)}")
        if self.live:
            self._redraw(line)
            self._drawn = 0
        else:
            self.stream.write(line)
        self.stream.write("\n")
        self.stream.flush()
