"""`mnist-cnn export`: a run as files other runtimes load (ONNX, Keras 3, the web), each with
a model card beside it.

Everything is checked before anything is written: the format, the run, `--out` (the right
suffix; an existing path must be an earlier export of the same format, never a stranger's
file), and the whole export is built in memory. Each file then goes to a temporary name
beside its target and is renamed into place, so a failure leaves no half-written file.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from mnist_cnn.commands.common import add_data_dir
from mnist_cnn.errors import ModelFileError, UsageError

SUFFIXES = {"onnx": ".onnx", "keras": ".keras"}  # the file formats; web writes a folder
FORMATS = (*SUFFIXES, "web")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="the model as ONNX, Keras 3 (.keras) or a web folder, "
                       "with a model card",
                       description="Export a run for another runtime: onnx (one .onnx file: "
                       "input 'image' (N, 1, 28, 28) float32 in [0, 1], output "
                       "'probabilities' (N, 10)), keras (a Keras 3 .keras file that "
                       "keras.models.load_model reads in safe mode) or web (a folder). A "
                       "model card (Markdown) is written beside it: NAME.onnx.md next to "
                       "NAME.onnx, NAME.keras.md next to NAME.keras, MODEL_CARD.md inside a "
                       "folder.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--format", required=True, dest="fmt", metavar="FORMAT",
                   help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--out", metavar="PATH", required=True,
                   help="the file to write (NAME.onnx, NAME.keras) or, for web, the folder; an "
                        "earlier export of the same format there is replaced")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.modelcard import model_card

    run_dir, out, fmt = Path(args.run), Path(args.out), args.fmt
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "web":
        return _web(run_dir, out, args.data_dir)
    card_path = out.with_name(out.name + ".md")  # NAME.onnx.md: two formats, two cards
    _check_target(out, fmt)
    _check_card(card_path)
    model, meta = load_model(run_dir)  # a bad run fails here, before anything is written
    card = model_card(run_dir, args.data_dir, export_format=fmt, file_name=out.name)
    if fmt == "onnx":
        from mnist_cnn.export_onnx import onnx_bytes

        data = onnx_bytes(model, {"dataset": meta.dataset, "recipe": meta.recipe or "",
                                  **{k: v for k, v in meta.metrics.items()
                                     if k.startswith("test_")}})
    else:
        from mnist_cnn.export_keras import keras_bytes

        data = keras_bytes(model)
    _write(out, data)
    _write(card_path, card.encode("utf-8"))
    print(f"Exported {run_dir} as {fmt}: {out} ({len(data):,} bytes)\nModel card: {card_path}")
    return 0


def _web(run_dir: Path, out: Path, data_dir: str | None) -> int:
    try:
        from mnist_cnn.export_web import export_web
    except ImportError as exc:
        if exc.name != "mnist_cnn.export_web":
            raise
        raise UsageError("the web format is not available in this build") from None
    from mnist_cnn.modelcard import WEB_CARD, model_card

    folder = export_web(run_dir, out)
    _write(folder / WEB_CARD, model_card(run_dir, data_dir, export_format="web").encode())
    print(f"Exported {run_dir} as web: {folder}/\nModel card: {folder / WEB_CARD}")
    return 0


def _check_parent(path: Path) -> None:
    """The nearest existing ancestor of `path` must be a folder we may write in."""
    import os

    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{path}: cannot write there ({parent} is not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: cannot write there ({parent} is not writable)")


def _is_export(path: Path, fmt: str) -> bool:
    """Whether the existing file `path` is an export of `fmt` (so it may be replaced)."""
    if fmt == "keras":
        try:
            with zipfile.ZipFile(path) as archive:
                return "config.json" in archive.namelist()
        except (OSError, zipfile.BadZipFile):
            return False
    from mnist_cnn.export_onnx import is_onnx_model

    return is_onnx_model(path)


def _check_target(out: Path, fmt: str) -> None:
    suffix = SUFFIXES[fmt]
    if out.suffix.lower() != suffix:
        raise UsageError(f"--out {out}: the {fmt} format writes a {suffix} file (e.g. "
                         f"model{suffix})")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; name the {suffix} file to write")
    if out.exists() and not (out.is_file() and _is_export(out, fmt)):
        raise UsageError(f"--out {out}: exists and is not a {suffix} model; remove it or "
                         "choose another path")
    _check_parent(out)


def _check_card(card: Path) -> None:
    from mnist_cnn.modelcard import is_model_card

    if card.exists() and not (card.is_file() and is_model_card(card)):
        raise UsageError(f"{card}: exists and is not a model card; the card goes beside the "
                         "export under that name: remove it or choose another --out")


def _write(path: Path, data: bytes) -> None:
    from mnist_cnn.files import atomic_write

    try:
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write ({exc.strerror or exc})") from None
