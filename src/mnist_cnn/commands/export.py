"""`mnist-cnn export`: a trained run in another form, with a model card beside it.

    onnx   one .onnx file (mnist_cnn.export_onnx): input `image` (N, 1, 28, 28) float32 in
           [0, 1], output `probabilities` (N, 10); card NAME.onnx.md beside it
    keras  a Keras 3 .keras file (mnist_cnn.export_keras) that `keras.models.load_model`
           reads in safe mode; card NAME.keras.md beside it
    web    the draw-a-digit page as a static folder that needs no server
           (mnist_cnn.export_web); card MODEL_CARD.md inside it

Everything is checked before anything is written: the format, the run, and `--out` (the
right suffix; an existing path must be an earlier export of the same format, never someone
else's file). Each file goes to a temporary name beside its target and is renamed into
place, so a failure leaves no half-written file.
"""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Callable
from pathlib import Path

from mnist_cnn.commands.common import add_data_dir
from mnist_cnn.errors import ModelFileError, UsageError

SUFFIXES = {"onnx": ".onnx", "keras": ".keras"}  # the single-file formats


def _web(run: str, out: str, data_dir: str | None) -> str:
    from mnist_cnn.export_web import export_web
    from mnist_cnn.modelcard import WEB_CARD, model_card

    card = model_card(run, data_dir, export_format="web")
    site = export_web(run, out)
    _write(site / WEB_CARD, card.encode("utf-8"))
    return (f"Wrote the page to {site}/: open {site / 'index.html'} in a browser, or copy the "
            f"folder to any static web host.\nModel card: {site / WEB_CARD}")


def _model_file(fmt: str) -> Callable[[str, str, str | None], str]:
    """The exporter of a single-file format: checks, the file, then its card."""

    def export(run: str, out: str, data_dir: str | None) -> str:
        from mnist_cnn.checkpoint import load_model, member_dir
        from mnist_cnn.modelcard import model_card

        path = Path(out)
        card_path = path.with_name(path.name + ".md")  # NAME.onnx.md: two formats, two cards
        _check_target(path, fmt)
        _check_card(card_path)
        model, meta = load_model(run)  # a bad run fails here, before anything is written
        if fmt == "keras" and meta.members:
            raise UsageError(f"{run} is an ensemble of {len(meta.members)} networks, and a "
                             ".keras file holds one Sequential network: export it as onnx "
                             "(one graph with every member) or web, or export a member "
                             f"({member_dir(run, 0)})")
        card = model_card(run, data_dir, export_format=fmt, file_name=path.name)
        if fmt == "onnx":
            from mnist_cnn.export_onnx import onnx_bytes

            data = onnx_bytes(model, {"dataset": meta.dataset, "recipe": meta.recipe or "",
                                      **{k: v for k, v in meta.metrics.items()
                                         if k.startswith("test_")}})
        else:
            from mnist_cnn.export_keras import keras_bytes

            data = keras_bytes(model)
        _write(path, data)
        _write(card_path, card.encode("utf-8"))
        return f"Wrote {path} ({len(data):,} bytes)\nModel card: {card_path}"

    return export


# Each format: (run directory, output path, data folder) -> the lines to print.
EXPORTERS: dict[str, Callable[[str, str, str | None], str]] = {
    "onnx": _model_file("onnx"), "keras": _model_file("keras"), "web": _web}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a run in another form (ONNX, Keras 3, a static "
                       "web page), with a model card",
                       description="Write a trained run in another form, with a model card "
                       "(Markdown) beside it. onnx: one .onnx file, input 'image' (N, 1, 28, "
                       "28) float32 in [0, 1], output 'probabilities' (N, 10); card "
                       "NAME.onnx.md. keras: a Keras 3 .keras file that "
                       "keras.models.load_model reads in safe mode; card NAME.keras.md. web: "
                       "the draw-a-digit page as a folder (index.html, scripts, the model) "
                       "that works opened from disk or from any static web host; card "
                       "MODEL_CARD.md inside it.")
    p.add_argument("run", metavar="RUN", help="run directory (runs/<name>)")
    # Checked in run(), not by argparse, so that a bad name is one line like every error.
    p.add_argument("--format", required=True, metavar="FORMAT",
                   help="what to write: " + ", ".join(EXPORTERS))
    p.add_argument("--out", required=True, metavar="PATH",
                   help="where to write it (NAME.onnx, NAME.keras; web: a new or empty "
                        "folder); an earlier export of the same format there is replaced")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format not in EXPORTERS:
        raise UsageError(f"unknown format {args.format!r}; choose one of: "
                         f"{', '.join(EXPORTERS)}")
    print(EXPORTERS[args.format](args.run, str(Path(args.out)), args.data_dir))
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
