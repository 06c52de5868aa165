"""`mnist-cnn bench`: speed and accuracy figures on this machine."""

from __future__ import annotations

import argparse
import json

from mnist_cnn.commands.common import ARCH_HELP, add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed and accuracy figures on this machine",
                       description="Train each recipe several times (seeds 0..N-1) and print "
                       "the median training time, throughput and test accuracy, then the "
                       "evaluation time and single-image latency. If TensorFlow is "
                       "importable, the lesson's Keras program runs as the peer.")
    p.add_argument("--recipes", default="fast,lesson",
                   help="comma-separated (default fast,lesson)")
    p.add_argument("--arch", default="lesson", help=ARCH_HELP)
    p.add_argument("--runs", type=int, default=3, help="runs per recipe (default 3)")
    p.add_argument("--epochs", type=int, help="override every recipe's epochs")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--no-peer", action="store_true", help="skip the Keras peer")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn import bench, data
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.console import bench_table
    from mnist_cnn.errors import UsageError
    from mnist_cnn.model import resolve_architecture

    arch = resolve_architecture(args.arch)
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    for name in recipes:  # unknown names and bad values fail before any work
        TrainConfig(arch=arch, recipe=name, epochs=args.epochs, device=args.device)
    if not 1 <= args.runs <= 100:
        raise UsageError("--runs must be between 1 and 100")
    mnist = data.load_data("mnist", args.data_dir)
    report = bench.run_bench(recipes, args.runs, mnist, args.epochs, args.device,
                             peer=not args.no_peer, arch=arch)
    print(json.dumps(report.to_dict(), indent=2) if args.json else bench_table(report))
    return 0
