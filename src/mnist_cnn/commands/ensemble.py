"""`mnist-cnn ensemble`: several trained runs as one run whose answer is the mean of theirs."""

from __future__ import annotations

import argparse

from mnist_cnn.commands.common import add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ensemble", help="combine trained runs into one that averages them",
                       description="Write a run directory whose answer is the mean of its "
                       "members' probabilities. Every command takes it like any run "
                       "(evaluate, predict, serve, report, export --format onnx or web). "
                       "The members are copied into it (RUN/members/01, ...), so it stays "
                       "whole if the original runs are removed; they must be single "
                       "networks (not ensembles) of one dataset. The ensemble is evaluated "
                       "on the test set once, to record its accuracy.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="the member runs (2 to 16)")
    p.add_argument("--out", required=True, metavar="DIR", help="the ensemble's run directory")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace an existing run (or a folder of other files) as "
                        "a whole, once the ensemble is complete")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn.ensemble import make_ensemble

    outcome = make_ensemble(args.runs, args.out, args.data_dir, args.overwrite)
    for i, (name, meta) in enumerate(zip(args.runs, outcome.members, strict=True)):
        accuracy = meta.metrics.get("test_accuracy")
        shown = f"{accuracy:.2%}" if accuracy is not None else "not recorded"
        print(f"member {i + 1:02d}: {name} ({meta.architecture.name}, test accuracy {shown})")
    print(f"Wrote the ensemble of {len(outcome.members)} to {outcome.out}: "
          f"{outcome.test.count} test images, loss {outcome.test.loss:.4f}, "
          f"accuracy {outcome.test.accuracy:.2%}")
    return 0
