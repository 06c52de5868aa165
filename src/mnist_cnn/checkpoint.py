"""The saved formats of a run, each owned by one class or pair of functions here:

    model.safetensors    the weights (safetensors: no code, shapes and dtypes checked)
    model.json           RunMeta: architecture, dataset, recipe, metrics, timing, versions
    members/01, ...      an ensemble's networks instead of model.safetensors: each a run
                         folder of its own (model.json, model.safetensors), listed in the
                         ensemble's model.json "members"; its "architecture" is the first's
    history.csv          one row per epoch (read_history / write_history)
    checkpoint/state.pt  TrainState: everything needed to resume training exactly

Each class's `to_dict` / `from_dict` is the only code that knows its keys; `from_dict`
validates every value, so readers get typed fields. Nothing is loaded with pickle: weights
come from safetensors, the training state through `torch.load(weights_only=True)`.
Every file is written atomically (files.atomic_write).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from mnist_cnn.averaging import Ensemble, Model
from mnist_cnn.config import TrainConfig
from mnist_cnn.datasets import DATASETS
from mnist_cnn.errors import MnistCnnError, ModelFileError
from mnist_cnn.files import (  # noqa: F401 (atomic_write: re-exported)
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    read_bounded,
    read_json,
    reason,
)
from mnist_cnn.model import Architecture, Net

WEIGHTS = "model.safetensors"
META = "model.json"
HISTORY = "history.csv"
SUMMARY = "summary.txt"
STATE = Path("checkpoint") / "state.pt"
FORMAT_VERSION = 2  # 2: any architecture (layer settings spelled out), typed sections
MAX_META_BYTES = 1 << 20  # model.json is a few KB; anything this big is not ours
MAX_HISTORY_BYTES = 1 << 20
MAX_WEIGHTS_BYTES = 64 << 20  # 10 million float32 parameters fit in 40 MB
MAX_STATE_BYTES = 256 << 20  # weights and two optimiser moments
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
# A loaded network's convolution weights are channels-last (NHWC), as training holds them:
# oneDNN's CPU kernels run it 2-3x faster than the plain layout, in evaluation (10,000 test
# images, bf16: 0.33 s against 0.90 s) and for single images (0.35 against 0.56 ms, fp32).
INFERENCE_LAYOUT = torch.channels_last
MEMBERS = "members"  # an ensemble's folder of networks: members/01, members/02, ...
MAX_MEMBERS = 16  # past a handful, another member changes the average by little
MAX_ENSEMBLE_BYTES = 256 << 20  # all members' weight files together


def _fail(problem: str) -> ModelFileError:
    return ModelFileError(problem)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, str)) or (
        isinstance(value, float) and math.isfinite(value))


def _flat(value: Any, what: str, leaf: Any = _scalar) -> dict[str, Any]:
    """A dict of str -> scalar (or a list of scalars, or one level of such dicts)."""
    if not isinstance(value, dict):
        raise _fail(f"{what} must be an object, not {type(value).__name__}")
    for key, item in value.items():
        ok = leaf(item) or (isinstance(item, list) and all(map(leaf, item))) or (
            isinstance(item, dict) and all(isinstance(k, str) and leaf(v)
                                           for k, v in item.items()))
        if not ok:
            raise _fail(f"{what}: {key!r} holds {str(item)[:40]!r}")
    return value


@dataclass(frozen=True)
class Timing:
    """How long training took, where, and in which numerics (evaluation uses the same)."""

    train_seconds: float | None = None
    steps: int | None = None
    device: str | None = None
    precision: str = "fp32"

    @classmethod
    def from_dict(cls, data: Any) -> Timing:
        data = _flat(data, "timing")
        seconds, steps = data.get("train_seconds"), data.get("steps")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(
                seconds, (int, float)) or not 0 <= seconds < 1e9):
            raise _fail(f"timing: train_seconds {seconds!r} is not a duration")
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool)
                                  or steps < 0):
            raise _fail(f"timing: steps {steps!r} is not a count")
        if data.get("precision", "fp32") not in ("fp32", "bf16"):
            raise _fail(f"timing: precision {data.get('precision')!r} is not fp32 or bf16")
        device = data.get("device")
        return cls(None if seconds is None else float(seconds), steps,
                   None if device is None else str(device), data.get("precision", "fp32"))


@dataclass(frozen=True)
class CalibrationMeta:
    """model.json's "calibration": the "not sure" line `mnist-cnn report` chose on held-out
    images (docs/TRUST.md), for the page; `weights` names the weights it was chosen for."""

    not_sure_below: float  # top softmax probability below which an answer is "not sure"
    target_accuracy: float  # below the line, held-out answers were right less often
    temperature: float  # softmax(logits / T) is calibrated; the line above is on T = 1
    fitted_on: str  # "validation", or "training": images the model learned from
    images: int  # how many held-out images the line was chosen on
    weights: str  # weights_digest() of the model it was chosen for

    @classmethod
    def from_dict(cls, data: Any) -> CalibrationMeta:
        data = _flat(data, "calibration")
        names = [f.name for f in fields(cls)]
        if sorted(data) != sorted(names):
            raise _fail(f"calibration needs exactly the keys {', '.join(names)}")
        numbers = [data[k] for k in ("not_sure_below", "target_accuracy", "temperature")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers) \
                or not (0 <= numbers[0] <= 1 and 0 < numbers[1] < 1 and numbers[2] > 0):
            raise _fail("calibration: not_sure_below, target_accuracy or temperature out of range")
        if data["fitted_on"] not in ("validation", "training") or not isinstance(
                data["images"], int) or isinstance(data["images"], bool) or data["images"] < 1:
            raise _fail("calibration: fitted_on must be validation or training, images a count")
        if not isinstance(data["weights"], str) or len(data["weights"]) != 64:
            raise _fail("calibration: weights must be a sha256 digest")
        return cls(*(float(v) for v in numbers), data["fitted_on"], data["images"],
                   data["weights"])


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of the weights' names, shapes and float32 values: the same for the same
    numbers however the file was laid out."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}{list(value.shape)}".encode())
        digest.update(value.numpy().astype("<f4").tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class RunMeta:
    """model.json: what the model is and how it came to be."""

    architecture: Architecture
    dataset: str = "mnist"
    recipe: str | None = None  # "lesson", "fast", "keras" (imported), ...
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # test_accuracy, test_loss, ...
    timing: Timing = Timing()
    versions: dict[str, str] = field(default_factory=dict)
    date: str | None = None
    config: TrainConfig | None = None  # the training configuration, as resolved
    source: dict[str, str] | None = None  # where an imported model came from
    # The folder the dataset was found in when the run was made (absolute): evaluate and
    # report look there too, so a run trained with --data-dir needs no flag afterwards.
    data_dir: str | None = None
    calibration: CalibrationMeta | None = None  # written by `mnist-cnn report`
    # An ensemble: the runs its networks were copied from, in order (members/01, ...), as
    # information; empty for a single network (and then not written at all).
    members: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format_version": FORMAT_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "members":
                if value:
                    out["members"] = list(value)
                continue
            if isinstance(value, (Architecture, TrainConfig)):
                value = value.to_dict()
            elif isinstance(value, (Timing, CalibrationMeta)):
                value = {k.name: getattr(value, k.name) for k in fields(value)}
            if f.name != "calibration" or value is not None:  # absent until a report
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any) -> RunMeta:
        """Validate model.json's content (this or an earlier format version)."""
        if not isinstance(data, dict) or "architecture" not in data:
            raise _fail("not a model description (no 'architecture')")
        known = {f.name for f in fields(cls)} | {"format_version"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise _fail(f"unknown keys {', '.join(unknown)}")
        version = data.get("format_version", 1)
        if version not in (1, FORMAT_VERSION):
            raise _fail(f"format_version {version!r}; this mnist-cnn reads 1 and 2")
        try:
            arch = Architecture.from_dict(data["architecture"])
            config = data.get("config")
            config = None if config is None else TrainConfig.from_dict(config)
        except MnistCnnError as exc:
            raise _fail(str(exc)) from None
        metrics = _flat(data.get("metrics", {}), "metrics")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in metrics.values()):
            raise _fail("metrics must all be numbers")
        for key in ("dataset", "recipe", "date", "data_dir"):
            if not isinstance(data.get(key, ""), (str, type(None))):
                raise _fail(f"{key} must be a string, not {type(data[key]).__name__}")
        dataset = data.get("dataset", "mnist")
        if dataset not in DATASETS:
            raise _fail(f"dataset {str(dataset)[:40]!r} is not one mnist-cnn knows "
                        f"({', '.join(DATASETS)})")
        data_dir = data.get("data_dir")
        if data_dir is not None and (len(data_dir) > MAX_PATH_CHARS or "\0" in data_dir
                                     or not data_dir.startswith("/")):
            raise _fail("data_dir must be an absolute folder path")
        source, calibration = data.get("source"), data.get("calibration")
        members = _members(data.get("members", []))
        return cls(arch, dataset, data.get("recipe"),
                   _flat(data.get("hyperparameters", {}), "hyperparameters"),
                   _flat(data.get("preprocessing", {}), "preprocessing"),
                   {k: float(v) for k, v in metrics.items()},
                   Timing.from_dict(data.get("timing", {})),
                   _flat(data.get("versions", {}), "versions"), data.get("date"), config,
                   None if source is None else _flat(source, "source"), data_dir,
                   None if calibration is None else CalibrationMeta.from_dict(calibration),
                   members)


def _members(value: Any) -> tuple[str, ...]:
    """model.json's "members": the sources of 2..MAX_MEMBERS networks (or none at all)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= MAX_PATH_CHARS
                                              for v in value):
        raise _fail("members must be a list of the member runs' names")
    if value and not 2 <= len(value) <= MAX_MEMBERS:
        raise _fail(f"an ensemble has 2 to {MAX_MEMBERS} members, not {len(value)}")
    return tuple(value)


def member_dir(run_dir: str | Path, index: int) -> Path:
    """The folder of an ensemble's member `index` (0-based): RUN/members/01, ..."""
    return Path(run_dir) / MEMBERS / f"{index + 1:02d}"


# ---------------------------------------------------------------- weights + model.json

def save_model(run_dir: Path, model: Net, meta: RunMeta | dict[str, Any]) -> None:
    """Write the weights and model.json (the architecture is taken from the model). `meta`
    may also be a dict of RunMeta's fields, validated by RunMeta.from_dict."""
    from safetensors.torch import save

    if not isinstance(meta, RunMeta):
        meta = RunMeta.from_dict({**meta, "architecture": model.arch.to_dict()})
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    # Serialised in memory first, so a full disk is a plain OSError of the write.
    atomic_write_bytes(run_dir / WEIGHTS, save(tensors))
    save_meta(run_dir, meta, model.arch)


def save_meta(run_dir: Path, meta: RunMeta, arch: Architecture | None = None) -> None:
    """Write model.json alone (atomically), with `arch` as the architecture if given."""
    meta_dict = {**meta.to_dict(), "architecture": (arch or meta.architecture).to_dict()}
    atomic_write_text(run_dir / META, json.dumps(meta_dict, indent=2) + "\n")


def read_meta(run_dir: str | Path) -> RunMeta:
    """model.json of a run, validated."""
    run_dir = Path(run_dir)
    path = run_dir / META
    try:
        if not run_dir.is_dir():
            raise ModelFileError(f"{run_dir}: no such run directory")
        if not os.path.lexists(path):
            raise ModelFileError(f"{path}: missing; is {run_dir} a run directory?")
    except OSError as exc:  # a name too long, a loop of links, no permission
        raise ModelFileError(f"{run_dir}: cannot be read ({reason(exc)})") from None
    data = read_json(path, MAX_META_BYTES, ModelFileError, "model description")
    try:
        return RunMeta.from_dict(data)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def load_model(run_dir: str | Path) -> tuple[Model, RunMeta]:
    """Rebuild the model from model.json alone and load its weights, checking shapes strictly.

    An ensemble's run gives an `Ensemble` of its members, each read the same way from its
    own folder; any model maps (N, 1, 28, 28) images to (N, 10) logits."""
    meta = read_meta(run_dir)
    if meta.members:
        return _load_ensemble(Path(run_dir), meta), meta
    return _load_net(Path(run_dir), meta), meta


def _load_ensemble(run_dir: Path, meta: RunMeta) -> Ensemble:
    """Every member: a single network's run of the ensemble's dataset, the first with the
    ensemble's architecture, all weights together within MAX_ENSEMBLE_BYTES."""
    nets, total = [], 0
    for i in range(len(meta.members)):
        folder = member_dir(run_dir, i)
        if folder.is_symlink() or not folder.is_dir():
            raise ModelFileError(f"{folder}: missing; the ensemble {run_dir} lists "
                                 f"{len(meta.members)} members")
        member = read_meta(folder)
        if member.members:
            raise ModelFileError(f"{folder}: an ensemble inside an ensemble")
        if member.dataset != meta.dataset:
            raise ModelFileError(f"{folder}: a {member.dataset} model in a {meta.dataset} "
                                 "ensemble")
        total += _size(folder / WEIGHTS)
        if total > MAX_ENSEMBLE_BYTES:
            raise ModelFileError(f"{run_dir}: the members' weights exceed "
                                 f"{MAX_ENSEMBLE_BYTES >> 20} MB together")
        nets.append(_load_net(folder, member))
    if nets[0].arch != meta.architecture:
        raise ModelFileError(f"{run_dir / META}: its architecture is not its first member's")
    return Ensemble(nets).eval()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # read_bounded names the missing file


def _load_net(run_dir: Path, meta: RunMeta) -> Net:
    """One network: model.json's architecture and the weights of model.safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        model = Net(meta.architecture.check_classifier())
    except MnistCnnError as exc:
        raise ModelFileError(f"{run_dir / META}: {exc}") from None
    path = run_dir / WEIGHTS
    raw = read_bounded(path, MAX_WEIGHTS_BYTES, ModelFileError, "weights file")
    try:
        tensors = load(raw)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged weights file ({exc})") from None
    check_weights(tensors, model, path)
    model.load_state_dict(tensors, strict=True)
    return model.to(memory_format=INFERENCE_LAYOUT).eval()


def check_weights(tensors: dict[str, torch.Tensor], model: Net, where: Path | str) -> None:
    """Names, shapes, float32 and finite values, exactly as `model` holds them."""
    expected = model.state_dict()
    if set(tensors) != set(expected):
        missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
        raise ModelFileError(f"{where}: weights do not match the architecture "
                             f"(missing {sorted(missing)}, unexpected {sorted(extra)})")
    for key, value in tensors.items():
        if value.shape != expected[key].shape or value.dtype != torch.float32:
            raise ModelFileError(f"{where}: {key} is {value.dtype} {tuple(value.shape)}, "
                                 f"expected float32 {tuple(expected[key].shape)}")
        if not torch.isfinite(value).all():
            raise ModelFileError(f"{where}: {key} holds non-finite values")


# ---------------------------------------------------------------- history.csv

def write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    """history.csv: one row per epoch (epoch, loss, accuracy[, val_loss, val_accuracy])."""
    if not history:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(run_dir / HISTORY, buf.getvalue())


def read_history(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of history.csv ([] when the run has none), each value a finite number."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return []
    raw = read_bounded(path, MAX_HISTORY_BYTES, ModelFileError, "history file")
    try:
        rows = [{k: float(v) for k, v in row.items()}
                for row in csv.DictReader(io.StringIO(raw.decode("utf-8")))]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelFileError(f"{path}: damaged history ({str(exc)[:100]})") from None
    for row in rows:
        if "epoch" not in row or not all(math.isfinite(v) for v in row.values()) \
                or row["epoch"] < 1:
            raise ModelFileError(f"{path}: damaged history (each row needs a finite epoch, "
                                 "loss and accuracy)")
    return rows


# ---------------------------------------------------------------- checkpoint/state.pt

@dataclass
class TrainState:
    """A resumable snapshot of training after `epoch` completed epochs."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    shuffle_rng: torch.Tensor  # the epochs' order
    history: list[dict[str, float]]
    train_seconds: float
    steps: int
    config: TrainConfig
    torch_rng: torch.Tensor | None = None  # Dropout's masks; absent in earlier checkpoints
    # Taken inside an epoch: the next epoch's order (the shuffle state before it was drawn),
    # steps done in it and its running sums (train.EpochProgress.to_dict); None at an
    # epoch's end and in earlier checkpoints.
    progress: dict[str, Any] | None = None
    augment_rng: torch.Tensor | None = None  # the augmentation's draws; only recipes with one

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (self.config.to_dict() if f.name == "config" else getattr(self, f.name))
                for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> TrainState:
        """Validate a loaded state: keys, types, ranges, config, weights vs architecture."""
        types = {"epoch": int, "model": dict, "optimizer": dict, "scheduler": dict,
                 "shuffle_rng": torch.Tensor, "history": list, "train_seconds": (float, int),
                 "steps": int, "config": dict}
        if not isinstance(data, dict):
            raise _fail(f"a {type(data).__name__}, not a dict")
        wrong = [k for k, t in types.items()
                 if not isinstance(data.get(k), t) or isinstance(data.get(k), bool)]
        if wrong:
            raise _fail(f"missing or mistyped: {', '.join(wrong)}")
        unknown = sorted(map(str, set(data) - set(types)
                             - {"torch_rng", "progress", "augment_rng"}))
        if unknown:
            raise _fail(f"unknown keys: {', '.join(unknown)}")
        if not (0 <= data["epoch"] <= 100_000 and 0 <= data["steps"] <= 10**12
                and math.isfinite(data["train_seconds"]) and data["train_seconds"] >= 0):
            raise _fail("epoch, steps or train_seconds out of range")
        for key in ("torch_rng", "augment_rng"):
            if data.get(key) is not None and not isinstance(data[key], torch.Tensor):
                raise _fail(f"{key} is not a tensor")
        try:
            config = TrainConfig.from_dict(data["config"])
        except MnistCnnError as exc:
            raise _fail(f"its config is not a training configuration ({exc})") from None
        history = data["history"]
        if not all(isinstance(row, dict) and all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v) for k, v in row.items()) for row in history):
            raise _fail("its history is not a list of per-epoch numbers")
        expected = Net(config.arch).state_dict()
        weights = data["model"]
        if set(weights) != set(expected) or not all(
                isinstance(w, torch.Tensor) and w.shape == expected[k].shape
                for k, w in weights.items()):
            raise _fail(f"its weights do not match the {config.arch.name} architecture")
        return cls(**{**data, "config": config, "train_seconds": float(data["train_seconds"]),
                      "history": [dict(row) for row in history],
                      "progress": _progress(data.get("progress"))})


def _progress(value: Any) -> dict[str, Any] | None:
    """The `progress` of a checkpoint taken inside an epoch, validated (None if absent)."""
    if value is None:
        return None
    keys = {"order_rng", "step", "seen", "loss_sum", "correct"}
    if not isinstance(value, dict) or set(value) != keys:
        raise _fail(f"its progress must hold exactly {', '.join(sorted(keys))}")
    rng, loss_sum, correct = value["order_rng"], value["loss_sum"], value["correct"]
    counts_ok = all(isinstance(value[k], int) and not isinstance(value[k], bool)
                    and 0 <= value[k] <= 10**12 for k in ("step", "seen"))
    tensors_ok = counts_ok and (
        isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.dim() == 1
        and rng.numel() <= 1 << 16
        and isinstance(loss_sum, torch.Tensor) and loss_sum.shape == ()
        and loss_sum.dtype == torch.float32 and bool(torch.isfinite(loss_sum))
        and isinstance(correct, torch.Tensor) and correct.shape == ()
        and correct.dtype == torch.int64 and 0 <= int(correct) <= value["seen"])
    if not (counts_ok and tensors_ok and value["step"] <= value["seen"]):
        raise _fail("its progress inside the epoch is not steps, counts and running sums")
    return dict(value)


def save_state(run_dir: Path, state: TrainState | dict[str, Any]) -> None:
    """Write the resumable training state (a TrainState, or the plain data of one)."""
    data = state.to_dict() if isinstance(state, TrainState) else state
    buf = io.BytesIO()  # in memory first: torch's own file writer reports a full disk as
    torch.save(data, buf)  # an internal RuntimeError, a plain write as an OSError
    atomic_write_bytes(run_dir / STATE, buf.getvalue())


def load_state(run_dir: str | Path) -> TrainState:
    """Load the resumable state with `weights_only=True`: plain data only, no code runs."""
    path = Path(run_dir) / STATE
    if not path.exists():
        raise ModelFileError(f"{path}: no resumable checkpoint in {run_dir}")
    raw = read_bounded(path, MAX_STATE_BYTES, ModelFileError, "checkpoint")
    try:
        data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or hostile files
        first_line = (str(exc).splitlines() or [""])[0][:200]  # some have no message at all
        raise ModelFileError(f"{path}: damaged or unsafe checkpoint "
                             f"({type(exc).__name__}: {first_line})") from None
    try:
        return TrainState.from_dict(data)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: not a training checkpoint ({exc})") from None
