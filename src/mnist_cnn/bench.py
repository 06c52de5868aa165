"""Speed and accuracy figures on this machine: compute only; the CLI renders the table.

Each recipe is trained `runs` times with seeds 0..runs-1 and timed by the training loop
itself (no data loading, no evaluation). Evaluation throughput and single-image latency
are measured on the last model. If TensorFlow happens to be importable, the lesson's own
Keras program runs as the peer in the same process (TensorFlow is never a dependency).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class RecipeFigures:
    recipe: str
    epochs: int
    batch_size: int
    precision: str
    train_seconds: list[float] = field(default_factory=list)
    images_per_second: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)

    def medians(self) -> dict[str, float]:
        return {"train_seconds_median": statistics.median(self.train_seconds),
                "images_per_second_median": statistics.median(self.images_per_second),
                "test_accuracy_median": statistics.median(self.test_accuracy),
                "test_accuracy_mean": statistics.fmean(self.test_accuracy)}


@dataclass
class BenchReport:
    machine: dict[str, Any]
    recipes: list[RecipeFigures]
    eval_seconds: dict[str, float] | None = None  # all 10,000 test images, median, by precision
    latency_ms: dict[str, float] | None = None  # single image in process: p50, p99
    peer: RecipeFigures | None = None  # the lesson's Keras program, when TensorFlow exists

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, figures in (("recipes", self.recipes), ("peer", self.peer)):
            if isinstance(figures, list):
                out[key] = [{**asdict(f), **f.medians()} for f in figures]
            elif figures is not None:
                out[key] = {**asdict(figures), **figures.medians()}
        return out


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else None, "date": time.strftime("%Y-%m-%d")}


def run_bench(recipes: list[str], runs: int, mnist, epochs: int | None = None,
              device: str = "auto", peer: bool = True, arch: Any = "lesson") -> BenchReport:
    """Every figure `mnist-cnn bench` shows: each recipe on `arch`, evaluation and latency on
    the last model, and the lesson's Keras program when TensorFlow is importable and `peer`
    (the peer is the lesson's network: compare it with `arch` "lesson")."""
    from mnist_cnn.device import bf16_supported

    report = BenchReport(machine=machine(), recipes=[])
    model = None
    for name in recipes:
        figures, model = bench_recipe(name, runs, mnist, epochs, device, arch)
        report.recipes.append(figures)
    if model is not None:
        device_of_model = next(model.parameters()).device
        precisions = ["fp32"] + (["bf16"] if bf16_supported(device_of_model) else [])
        report.eval_seconds = {p: bench_eval(model, mnist, p) for p in precisions}
        report.latency_ms = bench_latency(model, mnist)
    if peer and tensorflow_available():
        report.peer = bench_keras(runs, mnist, epochs or 5)
    return report


def bench_recipe(recipe: str, runs: int, mnist, epochs: int | None = None,
                 device: str = "auto", arch: Any = "lesson"
                 ) -> tuple[RecipeFigures, torch.nn.Module]:
    """Train `recipe` `runs` times (seeds 0..runs-1); return the figures and the last model."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.evaluate import evaluate
    from mnist_cnn.train import fit

    (x_train, y_train), (x_test, y_test) = mnist
    figures, model = None, None
    for seed in range(runs):
        cfg = TrainConfig(arch=arch, recipe=recipe, epochs=epochs, seed=seed, device=device)
        result = fit(cfg, (x_train, y_train))
        hp = result.hyperparameters
        if figures is None:
            figures = RecipeFigures(recipe, hp["epochs"], hp["batch_size"], result.precision)
        model = result.model
        figures.train_seconds.append(result.train_seconds)
        figures.images_per_second.append(result.steps * hp["batch_size"]
                                         / result.train_seconds)
        figures.test_accuracy.append(evaluate(model, x_test, y_test,
                                              result.precision).accuracy)
    return figures, model


def bench_eval(model: torch.nn.Module, mnist, precision: str = "fp32",
               repeats: int = 7) -> float:
    """Median seconds to evaluate the whole test set (as `mnist-cnn evaluate` does)."""
    from mnist_cnn.evaluate import evaluate

    _, (x_test, y_test) = mnist
    evaluate(model, x_test[:1000], y_test[:1000], precision)  # warm-up: kernel choice
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(model, x_test, y_test, precision)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_latency(model: torch.nn.Module, mnist, n: int = 1000) -> dict[str, float]:
    """p50 / p99 of one warm single-image prediction through the Predictor."""
    from mnist_cnn.predict import Predictor

    predictor = Predictor(model.cpu())
    _, (x_test, _) = mnist
    for image in x_test[:50]:
        predictor.probabilities(image)
    times = []
    for image in x_test[:n]:
        start = time.perf_counter()
        predictor.probabilities(image)
        times.append((time.perf_counter() - start) * 1e3)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def tensorflow_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def bench_keras(runs: int, mnist, epochs: int = 5) -> RecipeFigures:
    """The lesson's own Keras program: same network, compile('adam'), fit(epochs=5)."""
    import tensorflow as tf  # only when installed; never a dependency

    (x_train, y_train), (x_test, y_test) = mnist
    x_train = x_train.reshape(-1, 28, 28, 1) / 255.0
    x_test = x_test.reshape(-1, 28, 28, 1) / 255.0
    figures = RecipeFigures("keras (the lesson)", epochs, 32, "fp32")
    layers = tf.keras.layers
    for seed in range(runs):
        tf.keras.utils.set_random_seed(seed)
        model = tf.keras.Sequential([
            tf.keras.Input((28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"), layers.Flatten(),
            layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        start = time.perf_counter()
        model.fit(x_train, y_train, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - start
        figures.train_seconds.append(seconds)
        figures.images_per_second.append(len(x_train) * epochs / seconds)
        figures.test_accuracy.append(float(model.evaluate(x_test, y_test, verbose=0)[1]))
    return figures
