"""A run directory's lifecycle: train (or resume) into it, evaluate, and write it.

Training, `import-keras` and the Keras-style API's `save()` all write a run through
`write_run`, so every run directory has the same files, whoever made it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_cnn import checkpoint
from mnist_cnn.checkpoint import RunMeta, Timing, TrainState
from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import TrainingError
from mnist_cnn.evaluate import Metrics, evaluate
from mnist_cnn.files import atomic_write_text
from mnist_cnn.model import Net
from mnist_cnn.summary import render_keras, summarize
from mnist_cnn.train import Reporter, TrainResult, fit, split_validation

PREPROCESSING = {"input": "28x28 grayscale, light ink on dark, as MNIST", "scale": 1 / 255,
                 "layout": "NCHW in torch, NHWC in summaries"}


@dataclass
class RunOutcome:
    run_dir: Path
    result: TrainResult
    test: Metrics | None  # on the test set; None on DDP ranks other than 0, which write nothing
    test_seconds: float


def default_run_dir(cfg: TrainConfig, root: Path = Path("runs")) -> Path:
    """runs/<arch>-<dataset>-<recipe>-<YYYYmmdd-HHMMSS>."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{cfg.arch.name}-{cfg.dataset}-{cfg.recipe}-{stamp}"


def check_resume(cfg: TrainConfig, saved: TrainConfig, explicit: set[str]) -> None:
    """Refuse a resume whose explicit flags differ from the run's (recipe values resolved,
    so `--epochs 5` matches a run that took the recipe's 5 epochs)."""
    def value(c: TrainConfig, key: str) -> Any:
        if key in ("epochs", "batch_size", "lr", "optimizer"):
            return getattr(c.resolved_recipe(), key)
        return c.arch.name if key == "arch" else getattr(c, key)

    changed = [f"--{k.replace('_', '-')} {value(cfg, k)} (run has {value(saved, k)})"
               for k in sorted(explicit)
               if (cfg.arch != saved.arch if k == "arch" else value(cfg, k) != value(saved, k))]
    if changed:
        raise TrainingError("refusing to resume with different settings: " + ", ".join(changed)
                            + "; resume with the run's own settings, or start a new run")


def train_run(cfg: TrainConfig, run_dir: Path, data_dir: str | Path | None = None,
              reporter: Reporter | None = None, state: TrainState | None = None,
              explicit: set[str] | None = None) -> RunOutcome:
    """Load data, train (or resume from `state`, refusing explicit settings that differ
    from the run's), evaluate on the test set and write the run directory.

    A resumable checkpoint is saved after every epoch; model.safetensors and model.json are
    written only once training has finished with finite numbers. Under DDP every rank
    trains; rank 0 alone saves checkpoints, evaluates and writes.
    """
    from mnist_cnn import data, distributed

    main = distributed.world().main

    if state is not None:
        check_resume(cfg, state.config, explicit or set())
        cfg = state.config
    (x_train, y_train), (x_test, y_test) = data.load_data(cfg.dataset, data_dir)
    train_part, val_part = split_validation(x_train, y_train, cfg.validation_split)
    result = fit(cfg, train_part, val_part, reporter, state,
                 on_epoch=(lambda s: checkpoint.save_state(run_dir, s)) if main else None)
    if not main:
        return RunOutcome(run_dir, result, None, 0.0)
    start = time.perf_counter()
    test = evaluate(result.model, x_test, y_test, result.precision)
    test_seconds = time.perf_counter() - start
    last = {k: v for k, v in result.history[-1].items() if k != "epoch"} \
        if result.history else {}
    meta = RunMeta(
        architecture=result.model.arch, dataset=cfg.dataset, recipe=cfg.recipe,
        hyperparameters=result.hyperparameters, preprocessing=PREPROCESSING,
        metrics={"test_loss": test.loss, "test_accuracy": test.accuracy, **last},
        timing=Timing(result.train_seconds, result.steps, result.device, result.precision),
        versions=versions(), date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), config=cfg)
    write_run(run_dir, result.model, meta, result.history)
    return RunOutcome(run_dir, result, test, test_seconds)


def write_run(run_dir: Path, model: Net, meta: RunMeta,
              history: list[dict[str, float]] | None = None) -> None:
    """The run's model files: weights, model.json, history.csv (if any), summary.txt."""
    checkpoint.save_model(run_dir, model, meta)
    if history:
        checkpoint.write_history(run_dir, history)
    atomic_write_text(run_dir / checkpoint.SUMMARY, render_keras(summarize(model.arch)))


def versions() -> dict[str, str]:
    """The versions a run was made with."""
    import platform

    import numpy as np
    import torch

    from mnist_cnn import __version__

    return {"mnist_cnn": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
