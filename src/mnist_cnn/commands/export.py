"""`mnist-cnn export`: a trained run in another form. `--format web` writes the draw-a-digit
page as a static folder that needs no server (mnist_cnn.export_web)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def _web(run: str, out: str) -> str:
    from mnist_cnn.export_web import export_web

    site = export_web(run, out)
    return (f"Wrote the page to {site}/: open {site / 'index.html'} in a browser, or copy the "
            "folder to any static web host.")


# Each format: (run directory, output path) -> the line to print. Model files for other
# tools (ONNX, Keras) join here under their own names.
EXPORTERS: dict[str, Callable[[str, str], str]] = {"web": _web}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a run in another form (web: a static page)",
                       description="Write a trained run in another form. web: the "
                       "draw-a-digit page as a folder (index.html, scripts, the model) that "
                       "works opened from disk or from any static web host; the network "
                       "runs in the browser.")
    p.add_argument("run", metavar="RUN", help="run directory (runs/<name>)")
    p.add_argument("--format", required=True, choices=sorted(EXPORTERS),
                   help="what to write: " + ", ".join(sorted(EXPORTERS)))
    p.add_argument("--out", required=True, metavar="PATH",
                   help="where to write it (web: a new or empty folder, or an earlier export)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(EXPORTERS[args.format](args.run, str(Path(args.out))))
    return 0
