"""`mnist-cnn predict`: the digit in a person's own images."""

from __future__ import annotations

import argparse
import json
import sys

from mnist_cnn.commands.common import PROG, add_tta


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict the digit in your own images (photos, drawings)",
                       description="Prepare each image the way MNIST was made (grayscale, "
                       "polarity, paper and shadows removed, 20 px box, centre of mass) and "
                       "predict it. Inputs are files, folders or glob patterns; the format "
                       "comes from the file's bytes (PNG, JPEG, WebP, BMP, GIF).")
    p.add_argument("run", metavar="RUN", help="run directory (runs/<name>)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders or globs")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object an image")
    p.add_argument("--save-preprocessed", metavar="DIR",
                   help="write the 28x28 images the network saw to DIR")
    add_tta(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn.errors import UsageError
    from mnist_cnn.predict import Predictor, expand_inputs, predict_images
    from mnist_cnn.tta import check_tta

    if not 1 <= args.top_k <= 10:
        raise UsageError("--top-k must be between 1 and 10")
    check_tta(args.tta)
    paths = expand_inputs(args.images)
    rows = predict_images(Predictor.from_run(args.run, args.tta), paths, args.top_k,
                          args.save_preprocessed)
    if args.json:
        print(json.dumps(rows, indent=2))
    for row in rows:
        if row["error"]:
            print(f"{PROG}: {row['file']}: {row['error']}", file=sys.stderr)
        elif not args.json:
            top = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in row["top_k"])
            print(f"{row['file']}: {row['label']}  ({top})")
    return 1 if any(row["error"] for row in rows) else 0
