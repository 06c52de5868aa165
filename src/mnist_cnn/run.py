"""A run directory's lifecycle: train (or resume) into it, evaluate, and write it.

A run is written as one unit (staging.RunFolder): under a lock, in a staging folder beside
the target, moved into place when complete. A new run goes only into an empty or new
folder unless `overwrite`; a resumed run continues where its checkpoint is. Training,
`import-keras` and the Keras-style API's `save()` all write a run through `write_run_files`,
so every run directory has the same files, whoever made it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import checkpoint
from mnist_cnn.checkpoint import RunMeta, Timing, TrainState
from mnist_cnn.config import TrainConfig, planned_steps
from mnist_cnn.errors import OutputError, TrainingError, UsageError
from mnist_cnn.evaluate import Metrics, evaluate
from mnist_cnn.files import atomic_write_text, reason
from mnist_cnn.model import Net
from mnist_cnn.staging import RunFolder, check_target, describe
from mnist_cnn.summary import render_keras, summarize
from mnist_cnn.train import Reporter, TrainResult, fit, split_validation

PREPROCESSING = {"input": "28x28 grayscale, light ink on dark, as MNIST", "scale": 1 / 255,
                 "layout": "NCHW in torch, NHWC in summaries"}
# A checkpoint inside an epoch at most this often, so a one-epoch run can be resumed too; a
# save of the lesson's 1.1 MB state took 12 ms (docs/RELIABILITY.md): 0.2% of the time.
CHECKPOINT_SECONDS = 5.0


@dataclass
class RunOutcome:
    run_dir: Path
    result: TrainResult
    test: Metrics  # on the test set
    test_seconds: float
    planned_steps: int = 0  # the recipe's steps in all (more than taken under --max-steps)


@dataclass
class Target:
    """A run folder open for writing: the folder (lock, staging, swap), the staging folder
    where this run is built, the state it resumes from, and, after a failure, where its
    last checkpoint was kept (None when it had none)."""

    folder: RunFolder
    staging: Path
    state: TrainState | None = None
    kept: Path | None = None

    @property
    def run_dir(self) -> Path:
        return self.folder.target


@dataclass
class TrainingData:
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray]
    found_in: Path | None  # the folder named by --data-dir or $MNIST_CNN_DATA, if any


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


def _refuse_unless_free(folder: RunFolder, what: str, overwrite: bool, foreign: bool) -> None:
    """A new run goes only into a new or empty folder (not over a run, an interrupted run
    or other files), unless `overwrite`; a folder that is not a run only if `foreign` too."""
    target, kind = folder.target, describe(folder.target)
    if kind == "files" and not (overwrite and foreign):
        names = sorted(p.name for p in target.iterdir())
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise UsageError(f"{target} is not empty and is not a run (it holds {shown}); "
                         "choose another --out" + (", or add --overwrite to replace the "
                                                   "folder and everything in it"
                                                   if foreign else ""))
    if overwrite:
        return
    if folder.interrupted() is not None:
        raise UsageError(f"{target} holds an interrupted run (checkpoint in "
                         f"{folder.interrupted()}); resume it with `mnist-cnn train --resume "
                         f"{target}`, or add --overwrite to start over")
    if kind == "run":
        raise UsageError(f"{target} already holds a run; {what} would replace it: choose "
                         "another --out, or add --overwrite to replace it as a whole (its "
                         "report and checkpoint too)")


def _resume_source(resume: Path, folder: RunFolder) -> Path:
    """The folder whose checkpoint `--resume resume` continues: the run's interrupted
    staging folder if it has one (the newest progress), else the run folder itself."""
    source = folder if _same(resume, folder.target) else RunFolder(resume)
    return source.interrupted() or source.target


def resume_state(resume: Path) -> TrainState:
    """The checkpoint `train --resume resume` would continue from, read without taking the
    run's lock (the DDP launcher checks it before starting the ranks)."""
    return checkpoint.load_state(_resume_source(Path(resume), RunFolder(Path(resume))))


def _same(a: Path, b: Path) -> bool:
    """Whether two run folder paths name the same folder (./runs/x, runs/x, /abs/runs/x)."""
    return os.path.abspath(check_target(Path(a))) == os.path.abspath(check_target(Path(b)))


@contextmanager
def open_run(run_dir: Path, overwrite: bool = False, resume: Path | None = None,
             what: str = "training", foreign: bool = True) -> Iterator[Target]:
    """Lock `run_dir` and stage a run for it; on success the caller commits, on any
    failure a run's last checkpoint is kept (see RunFolder.keep_interrupted).

    With `resume`, the run continues from that run's checkpoint (written back into it, or
    into `run_dir` when that is another folder). Otherwise a non-empty `run_dir` is refused
    unless `overwrite` (and, for a folder that is not a run, `foreign`).
    """
    with RunFolder(run_dir) as folder:
        state = source = None
        if resume is not None:
            source = _resume_source(Path(resume), folder)
            state = checkpoint.load_state(source)
        in_place = resume is not None and _same(resume, folder.target)
        if not in_place:
            _refuse_unless_free(folder, what, overwrite, foreign)
        staging = folder.start(keep=source == folder.staging)
        if source is not None and source != folder.staging:
            _copy_state(source, staging)
        target = Target(folder, staging, state)
        try:
            yield target
        except BaseException:
            try:
                target.kept = folder.keep_interrupted()
            except OutputError:
                target.kept = None
            raise


def _copy_state(source: Path, staging: Path) -> None:
    """The checkpoint a resumed run starts from, into its staging folder (kept on failure)."""
    try:
        (staging / checkpoint.STATE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / checkpoint.STATE, staging / checkpoint.STATE)
    except OSError as exc:
        raise OutputError(f"cannot write {staging / checkpoint.STATE}: {reason(exc)}")\
            from None


def resumed_config(cfg: TrainConfig, state: TrainState | None,
                   explicit: set[str] | None) -> TrainConfig:
    """The configuration to train with: the checkpoint's, after refusing explicit flags
    that differ from it; `cfg` for a new run."""
    if state is None:
        return cfg
    check_resume(cfg, state.config, explicit or set())
    return state.config


def training_data(cfg: TrainConfig, data_dir: str | Path | None = None) -> TrainingData:
    """The run's data (downloaded only if it is nowhere here), split as `cfg` asks."""
    from mnist_cnn import data

    (x_train, y_train), test = data.load_data(cfg.dataset, data_dir)
    train_part, val_part = split_validation(x_train, y_train, cfg.validation_split)
    found = data.found_in(data.get_dataset(cfg.dataset), data.SPLITS, data_dir)
    return TrainingData(train_part, val_part, test, found)


def train_into(target: Target, cfg: TrainConfig, data: TrainingData,
               reporter: Reporter | None = None) -> RunOutcome:
    """Train (or resume `target.state`), evaluate on the test set and commit the run.

    A resumable checkpoint is saved in the staging folder after every epoch and every
    CHECKPOINT_SECONDS inside one; the model files are written only once training has
    finished with finite numbers, and the run moves into place whole.
    """
    result = fit(cfg, data.train, data.val, reporter, target.state,
                 on_epoch=lambda s: checkpoint.save_state(target.staging, s),
                 checkpoint_seconds=CHECKPOINT_SECONDS)
    # Evaluated as `evaluate` will see it once loaded (checkpoint.INFERENCE_LAYOUT): in
    # bf16 each layout's kernels round differently, and model.json would hold another loss.
    result.model.to(memory_format=checkpoint.INFERENCE_LAYOUT)
    start = time.perf_counter()
    test = evaluate(result.model, *data.test, result.precision)
    test_seconds = time.perf_counter() - start
    last = {k: v for k, v in result.history[-1].items() if k != "epoch"} \
        if result.history else {}
    meta = RunMeta(
        architecture=result.model.arch, dataset=cfg.dataset, recipe=cfg.recipe,
        hyperparameters=result.hyperparameters, preprocessing=PREPROCESSING,
        metrics={"test_loss": test.loss, "test_accuracy": test.accuracy, **last},
        timing=Timing(result.train_seconds, result.steps, result.device, result.precision),
        versions=versions(), date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), config=cfg,
        data_dir=None if data.found_in is None else str(data.found_in))
    write_run_files(target.staging, result.model, meta, result.history)
    target.folder.commit()
    recipe = cfg.resolved_recipe()
    planned = planned_steps(recipe, len(data.train[0]))
    return RunOutcome(target.run_dir, result, test, test_seconds, planned)


def train_run(cfg: TrainConfig, run_dir: Path, data_dir: str | Path | None = None,
              reporter: Reporter | None = None, resume: Path | None = None,
              explicit: set[str] | None = None, overwrite: bool = False) -> RunOutcome:
    """Train a new run into `run_dir` (or resume the run `resume`), evaluate it on the test
    set and write it as one unit: open_run, training_data, train_into in one call."""
    with open_run(Path(run_dir), overwrite, resume) as target:
        cfg = resumed_config(cfg, target.state, explicit)
        return train_into(target, cfg, training_data(cfg, data_dir), reporter)


def write_run_files(folder: Path, model: Net, meta: RunMeta,
                    history: list[dict[str, float]] | None = None) -> None:
    """The run's model files: weights, history.csv (if any), summary.txt, and model.json
    last (a folder holding model.json is a complete run)."""
    if history:
        checkpoint.write_history(folder, history)
    atomic_write_text(folder / checkpoint.SUMMARY, render_keras(summarize(model.arch)))
    checkpoint.save_model(folder, model, meta)


def write_run(run_dir: Path, model: Net, meta: RunMeta,
              history: list[dict[str, float]] | None = None, overwrite: bool = True,
              foreign: bool = False) -> None:
    """A run without training (an imported model, the API's save) written as one unit.
    `overwrite` replaces an existing run as a whole (the API's save, as Keras' does);
    a folder of other files is replaced only with `foreign` too (the CLI's --overwrite)."""
    with open_run(Path(run_dir), overwrite, what="writing this model",
                  foreign=foreign) as target:
        write_run_files(target.staging, model, meta, history)
        target.folder.commit()


def versions() -> dict[str, str]:
    """The versions a run was made with."""
    import platform

    import numpy as np
    import torch

    from mnist_cnn import __version__

    return {"mnist_cnn": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
