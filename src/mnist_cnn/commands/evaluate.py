"""`mnist-cnn evaluate`: loss, accuracy, per-class report and confusion matrix of a run."""

from __future__ import annotations

import argparse
import json

from mnist_cnn.commands.common import add_data_dir, add_tta


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="loss, accuracy and per-class report of a saved run",
                       description="Evaluate a run on its dataset's 10,000 test images: "
                       "loss, accuracy, precision/recall/F1 per class and the confusion "
                       "matrix.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--precision", choices=("fp32", "bf16"),
                   help="numerics of the evaluation (default: the precision the run was "
                        "trained in; bf16 only where the hardware supports it)")
    add_tta(p)
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn import data
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.console import metrics_table
    from mnist_cnn.evaluate import evaluate
    from mnist_cnn.tta import check_tta, with_tta

    check_tta(args.tta)
    data.check_data_dir(args.data_dir)
    model, meta = load_model(args.run)
    model = with_tta(model, args.tta)
    dataset = data.get_dataset(meta.dataset)
    # Only the two test files; also where the run's own data was found when it was trained.
    x_test, y_test = data.load_test(dataset.name, args.data_dir, recorded=meta.data_dir)
    metrics = evaluate(model, x_test, y_test, args.precision or meta.timing.precision)
    if args.json:
        print(json.dumps({"run": str(args.run), "dataset": dataset.name,
                          "members": len(meta.members) or 1, "tta": args.tta,
                          **metrics.to_dict()}, indent=2))
    else:
        print(_averaged(len(meta.members), args.tta), end="")
        print(metrics_table(dataset.name, dataset.classes, metrics))
    return 0


def _averaged(members: int, tta: int) -> str:
    """A line saying what the probabilities are a mean of, when they are a mean."""
    parts = ([f"{members} networks (an ensemble)"] if members else []) + \
        ([f"{tta} views of each image (test-time augmentation)"] if tta > 1 else [])
    return f"mean of the probabilities of {' and '.join(parts)}\n" if parts else ""
