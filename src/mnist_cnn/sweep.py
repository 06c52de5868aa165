"""Hyperparameter sweeps on Optuna (the optional `[sweep]` extra, imported only here).

A search space is a small JSON file whose keys are `mnist-cnn train` settings:

    {"recipe": "fast", "lr": {"low": 0.001, "high": 0.03, "log": true},
     "batch_size": [64, 128, 256], "epochs": {"low": 1, "high": 2},
     "arch": ["lesson", "lesson-pool3", "wide.json"], "validation_split": 0.1}

a value is fixed, a list of choices, or a range (`low`, `high`, optional `log` / `step`;
integers when both ends are). Each trial is an ordinary run directory written through
`run.train_run`, scored on its validation split (never the test set; the test accuracy is
kept beside it as information only). Worker processes share the study: a journal file in
the output folder on one machine, or an RDB URL (`--storage`) across machines.
"""

from __future__ import annotations

import fcntl
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnist_cnn.config import TrainConfig
from mnist_cnn.errors import MnistCnnError, UsageError

JOURNAL = "study.journal"
TRIALS = "trials"  # OUT/trials/0007: trial 7's run directory
DEFAULT_VALIDATION = 1 / 6  # the last 10,000 of MNIST's 60,000 training images
KEYS = ("arch", "dataset", "recipe", "epochs", "batch_size", "lr", "optimizer", "seed",
        "validation_split", "max_steps", "device")
MAX_SPACE_BYTES = 1 << 16


@dataclass(frozen=True)
class Space:
    """A validated search space: fixed settings, and the ones each trial draws."""

    fixed: dict[str, Any]
    choices: dict[str, list[Any]] = field(default_factory=dict)
    ranges: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, base: Path = Path(".")) -> Space:
        """Check every key and value; arch files are found beside the space file."""
        if not isinstance(data, dict):
            raise UsageError("a search space is a JSON object of train settings")
        unknown = sorted(set(map(str, data)) - set(KEYS))
        if unknown:
            raise UsageError(f"unknown search-space keys: {', '.join(unknown)}; "
                             f"use: {', '.join(KEYS)}")
        space = cls({"validation_split": DEFAULT_VALIDATION})
        for key, value in data.items():
            if isinstance(value, list):
                if not value:
                    raise UsageError(f"{key}: an empty list of choices")
                space.choices[key] = [_arch_path(v, base) if key == "arch" else v
                                      for v in value]
            elif isinstance(value, dict):
                space.ranges[key] = _range(key, value)
            else:
                space.fixed[key] = _arch_path(value, base) if key == "arch" else value
        split = space.fixed.get("validation_split")
        if "validation_split" in space.choices or "validation_split" in space.ranges or \
                not (isinstance(split, (int, float)) and 0 < split < 1):
            raise UsageError("validation_split must be one fixed fraction in (0, 1): trials "
                             "are scored on the validation split, never the test set")
        for config in space.corners():  # every choice and both ends of every range
            config_of(config)
        return space

    def corners(self) -> list[dict[str, Any]]:
        """Settings that together try every choice and range end once."""
        out = [{**self.fixed, key: value} for key, values in self.choices.items()
               for value in values]
        out += [{**self.fixed, key: r[end]} for key, r in self.ranges.items()
                for end in ("low", "high")]
        return out or [dict(self.fixed)]

    def suggest(self, trial) -> dict[str, Any]:
        """One trial's settings, drawn by Optuna's sampler."""
        drawn = dict(self.fixed)
        for key, values in self.choices.items():
            drawn[key] = trial.suggest_categorical(key, values)
        for key, r in self.ranges.items():
            if isinstance(r["low"], int) and isinstance(r["high"], int):
                drawn[key] = trial.suggest_int(key, r["low"], r["high"], step=r.get("step", 1),
                                               log=r.get("log", False))
            else:
                drawn[key] = trial.suggest_float(key, r["low"], r["high"], step=r.get("step"),
                                                 log=r.get("log", False))
        return drawn


def _range(key: str, r: dict[str, Any]) -> dict[str, Any]:
    extra = sorted(set(r) - {"low", "high", "log", "step"})
    numbers = [r.get("low"), r.get("high")]
    if extra or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) for v in numbers) or numbers[0] > numbers[1]:
        raise UsageError(f"{key}: a range is {{\"low\": L, \"high\": H}} with L <= H "
                         "(and optional \"log\": true or \"step\": S)")
    if r.get("log") and (numbers[0] <= 0 or "step" in r):
        raise UsageError(f"{key}: a log range needs low > 0 and no step")
    return dict(r)


def _arch_path(value: Any, base: Path) -> Any:
    """An architecture file named relative to the space file; names stay names."""
    if isinstance(value, str) and value.endswith(".json") and not Path(value).is_absolute():
        beside = base / value
        return str(beside.resolve()) if beside.exists() else value
    return value


def config_of(settings: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of one trial's settings (a UsageError if they are invalid)."""
    from mnist_cnn.model import resolve_architecture

    values = dict(settings)
    if isinstance(values.get("arch"), str):
        values["arch"] = resolve_architecture(values["arch"])
    try:
        return TrainConfig(**values)
    except TypeError as exc:
        raise UsageError(f"a bad setting in the search space ({exc})") from None


def read_space(path: Path) -> Space:
    """Read and validate a search-space file."""
    from mnist_cnn.files import read_json

    data = read_json(path, MAX_SPACE_BYTES, UsageError, "search space")
    try:
        return Space.from_dict(data, path.parent)
    except MnistCnnError as exc:
        raise UsageError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- the study and its workers

@dataclass(frozen=True)
class Sweep:
    """Where the study lives and how many trials it is to have."""

    space: Space
    out: Path
    trials: int
    storage: str | None = None  # an RDB URL; default: a journal file in `out`
    study: str = "mnist-cnn"
    data_dir: str | None = None
    seed: int = 0

    def open(self, index: int = 0):
        """The study (created on first use), shared by every worker; worker `index` draws
        with its own sampler seed."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = self.storage_object()
        study = optuna.create_study(study_name=self.study, storage=storage,
                                    direction="maximize", load_if_exists=True)
        seed = self.seed + 1000 * index + len(study.get_trials(deepcopy=False))
        return optuna.load_study(study_name=self.study, storage=storage,
                                 sampler=optuna.samplers.TPESampler(seed=seed))

    def storage_object(self):
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        if self.storage:
            return self.storage
        path = str(self.out / JOURNAL)  # each write is one appended, locked record
        return optuna.storages.JournalStorage(JournalFileBackend(path,
                                                                 JournalFileOpenLock(path)))


def worker(sweep: Sweep, index: int, threads: int) -> None:
    """Run trials until the study has `sweep.trials` of them (finished or running)."""
    import optuna
    import torch

    from mnist_cnn.run import train_run

    torch.set_num_threads(threads)
    study = sweep.open(index)
    while (trial := _ask(sweep, study)) is not None:
        try:
            cfg = config_of(sweep.space.suggest(trial))
            outcome = train_run(cfg, sweep.out / TRIALS / f"{trial.number:04d}",
                                sweep.data_dir)
        except MnistCnnError as exc:  # a bad draw (e.g. non-finite loss): the trial fails
            trial.set_user_attr("error", str(exc)[:300])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        for key, value in (("test_accuracy", outcome.test.accuracy),
                           ("train_seconds", outcome.result.train_seconds)):
            trial.set_user_attr(key, value)  # information only: never the objective
        study.tell(trial, outcome.result.history[-1]["val_accuracy"])


def _ask(sweep: Sweep, study):
    """The next trial, or None when the study has enough. A lock file makes the count and
    the ask one step for the workers of this machine."""
    from optuna.trial import TrialState

    sweep.out.mkdir(parents=True, exist_ok=True)
    with open(sweep.out / ".ask.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        alive = study.get_trials(deepcopy=False,
                                 states=(TrialState.COMPLETE, TrialState.RUNNING))
        if len(alive) >= sweep.trials:
            return None
        trial = study.ask()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("run", str(sweep.out / TRIALS / f"{trial.number:04d}"))
        return trial


def fail_stale(sweep: Sweep) -> int:
    """Mark as failed the running trials of workers on this machine that no longer exist
    (killed); return how many. Their run directories hold no model."""
    import optuna
    from optuna.trial import TrialState

    study = sweep.open()
    storage, stale = optuna.storages.get_storage(sweep.storage_object()), 0
    study_id = storage.get_study_id_from_name(sweep.study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == socket.gethostname() and isinstance(pid, int) \
                and not _alive(pid):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            stale += 1
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_process(sweep: Sweep, index: int, threads: int) -> None:
    """A worker process: Ctrl-C (its trial already marked failed) ends it with 130."""
    try:
        worker(sweep, index, threads)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def run_workers(sweep: Sweep, workers: int) -> list[int]:
    """Start `workers` processes on this machine, each running `worker`, and wait; return
    their exit codes (negative: killed by that signal). The cores are shared out."""
    import multiprocessing

    sweep.out.mkdir(parents=True, exist_ok=True)
    fail_stale(sweep)
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
    procs = [ctx.Process(target=_worker_process, args=(sweep, i, threads),
                         name=f"sweep-worker-{i}") for i in range(workers)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:  # Ctrl-C reached the workers too: let them record it
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
        raise
    finally:
        fail_stale(sweep)
    return [int(proc.exitcode or 0) for proc in procs]
