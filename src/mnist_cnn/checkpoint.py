"""Model files: safetensors weights + JSON metadata; the resumable training state.

A run directory holds `model.safetensors`, `model.json`, `history.csv`, `summary.txt` and
`checkpoint/state.pt`. Every file is written to a temporary name and moved into place with
`os.replace`, so a crash leaves either the old file or the new one, never half of one.
Nothing is loaded with pickle: weights come from safetensors, the training state through
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mnist_cnn.errors import ModelFileError
from mnist_cnn.model import Architecture, Net

WEIGHTS = "model.safetensors"
META = "model.json"
HISTORY = "history.csv"
SUMMARY = "summary.txt"
STATE = Path("checkpoint") / "state.pt"
FORMAT_VERSION = 1
MAX_META_BYTES = 1 << 20  # model.json is a few KB; anything this big is not ours


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file owner-only; a model or report is meant to be shared, so it
        # gets the permissions an ordinary new file would have (after `write`, which may
        # have replaced the file).
        tmp.chmod(0o666 & ~_umask())
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_model(run_dir: Path, model: Net, meta: dict[str, Any]) -> None:
    """Write the weights and model.json (the architecture is taken from the model)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    meta = {**meta, "format_version": FORMAT_VERSION, "architecture": model.arch.to_dict()}
    atomic_write(run_dir / WEIGHTS, lambda tmp: save_file(tensors, str(tmp)))
    atomic_write_text(run_dir / META, json.dumps(meta, indent=2) + "\n")


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """model.json of a run, checked to be a JSON object with an architecture."""
    path = Path(run_dir) / META
    if not Path(run_dir).is_dir():
        raise ModelFileError(f"{run_dir}: no such run directory")
    try:
        if path.stat().st_size > MAX_META_BYTES:
            raise ModelFileError(f"{path}: {path.stat().st_size:,} bytes; a model description "
                                 f"is never over {MAX_META_BYTES:,}")
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing; is {run_dir} a run directory?") from None
    # ValueError covers bad JSON, bad UTF-8 and over-long integers; RecursionError, nesting.
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(meta, dict) or "architecture" not in meta:
        raise ModelFileError(f"{path}: not a model description (no 'architecture')")
    return meta


def load_model(run_dir: str | Path) -> tuple[Net, dict[str, Any]]:
    """Rebuild the model from model.json alone and load its weights, checking shapes strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_meta(run_dir)
    model = Net(_known_architecture(meta["architecture"], Path(run_dir) / META))
    path = Path(run_dir) / WEIGHTS
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged weights file ({exc})") from None
    expected = model.state_dict()
    if set(tensors) != set(expected):
        missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
        raise ModelFileError(f"{path}: weights do not match the architecture "
                             f"(missing {sorted(missing)}, unexpected {sorted(extra)})")
    for key, value in tensors.items():
        if value.shape != expected[key].shape or value.dtype != torch.float32:
            raise ModelFileError(f"{path}: {key} is {value.dtype} {tuple(value.shape)}, "
                                 f"expected float32 {tuple(expected[key].shape)}")
        if not torch.isfinite(value).all():
            raise ModelFileError(f"{path}: {key} holds non-finite values")
    model.load_state_dict(tensors, strict=True)
    return model.eval(), meta


def _known_architecture(description: Any, path: Path) -> Architecture:
    """The architecture model.json describes, accepted only if it is one we know, layer for
    layer: a crafted file cannot make us build (and allocate) a network of its choosing."""
    from mnist_cnn.model import ARCHITECTURES

    try:
        arch = Architecture.from_dict(description)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    known = ARCHITECTURES.get(arch.name)
    if known is None:
        raise ModelFileError(f"{path}: unknown architecture {arch.name!r}; known: "
                             f"{', '.join(ARCHITECTURES)}")
    if (arch.layers, arch.input_shape) != (known.layers, known.input_shape):
        raise ModelFileError(f"{path}: the layers differ from the known {arch.name!r} "
                             "architecture")
    return arch


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
    path = Path(run_dir) / HISTORY
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: damaged history ({exc})") from None


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """The resumable training state (tensors, numbers, strings, lists and dicts only)."""
    atomic_write(run_dir / STATE, lambda tmp: torch.save(state, tmp))


def load_state(run_dir: str | Path) -> dict[str, Any]:
    """Load the resumable state with `weights_only=True`: plain data only, no code runs."""
    path = Path(run_dir) / STATE
    if not path.is_file():
        raise ModelFileError(f"{path}: no resumable checkpoint in {run_dir}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or hostile files
        first_line = (str(exc).splitlines() or [""])[0][:200]  # some have no message at all
        raise ModelFileError(f"{path}: damaged or unsafe checkpoint "
                             f"({type(exc).__name__}: {first_line})") from None
    problem = _state_problem(state)
    if problem:
        raise ModelFileError(f"{path}: not a training checkpoint ({problem})")
    return state


# What fit() saves; a state that differs in any of these is refused before it is used.
_STATE_TYPES = {"epoch": int, "model": dict, "optimizer": dict, "scheduler": dict,
                "shuffle_rng": torch.Tensor, "history": list, "train_seconds": float | int,
                "steps": int, "config": dict}


def _state_problem(state: Any) -> str | None:
    """Why `state` is not one fit() saved (keys, types, config, weights vs architecture)."""
    from typing import get_type_hints

    from mnist_cnn.model import ARCHITECTURES
    from mnist_cnn.train import TrainConfig

    if not isinstance(state, dict):
        return f"a {type(state).__name__}, not a dict"
    wrong = [k for k, t in _STATE_TYPES.items() if not isinstance(state.get(k), t)]
    if wrong:
        return f"missing or mistyped: {', '.join(wrong)}"
    hints, config = get_type_hints(TrainConfig), state["config"]
    if not set(config) <= set(hints) or not all(
            isinstance(v, hints[k]) for k, v in config.items()):
        return "its config is not a training configuration"
    if config["arch"] not in ARCHITECTURES:
        return f"unknown architecture {config['arch']!r}"
    expected = Net(ARCHITECTURES[config["arch"]]).state_dict()
    weights = state["model"]
    if set(weights) != set(expected) or not all(
            isinstance(w, torch.Tensor) and w.shape == expected[k].shape
            for k, w in weights.items()):
        return f"its weights do not match the {config['arch']} architecture"
    return None
