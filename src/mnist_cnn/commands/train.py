"""`mnist-cnn train`: the lesson (or another recipe / architecture), into a run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_cnn.commands.common import ARCH_HELP, PROG, add_data_dir

# The flags that are TrainConfig fields. They default to None so that --resume can tell
# what the user set explicitly.
KEYS = ("arch", "dataset", "recipe", "epochs", "batch_size", "lr", "optimizer", "seed",
        "validation_split", "max_steps", "device")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (the lesson's settings by default)",
                       description="Train the lesson's CNN. With no flags this is the lesson: "
                       "MNIST, batch 32, 5 epochs, Adam(1e-3), fp32.")
    p.add_argument("--arch", help=ARCH_HELP)
    p.add_argument("--dataset", help="mnist (default) or fashion-mnist")
    p.add_argument("--recipe", help="lesson (the lesson's settings, default), fast (the "
                   "same network, 99%% in one epoch) or accurate (the same network, several "
                   "epochs on randomly distorted images)")
    p.add_argument("--epochs", type=int, help="passes over the training set (recipe's default)")
    p.add_argument("--batch-size", type=int, help="images per step (recipe's default)")
    p.add_argument("--lr", type=float, help="learning rate (recipe's default)")
    p.add_argument("--optimizer", help="adam (default), sgd or rmsprop, with Keras' defaults "
                   "and update rules")
    p.add_argument("--seed", type=int, help="random seed for weights and shuffling (default 0)")
    p.add_argument("--validation-split", type=float,
                   help="hold out the last fraction of the training set (default 0)")
    p.add_argument("--max-steps", type=int, help="stop after N steps in all (smoke runs)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--out", metavar="DIR",
                   help="run directory (default runs/<arch>-<dataset>-<recipe>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    p.add_argument("--report", action="store_true",
                   help="after training, write the run's report (see `report --help`)")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn.checkpoint import load_state
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.console import KerasProgress, train_summary
    from mnist_cnn.model import resolve_architecture
    from mnist_cnn.run import default_run_dir, train_run
    from mnist_cnn.summary import render_keras, summarize

    explicit = {k for k in KEYS if getattr(args, k) is not None}
    values = {k: getattr(args, k) for k in explicit}
    if "arch" in values:
        values["arch"] = resolve_architecture(values["arch"])
    cfg = TrainConfig(**values)  # every flag is checked here, before any data is read
    state = None
    if args.resume:
        run_dir = Path(args.resume)
        state = load_state(run_dir)
    else:
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
    print(render_keras(summarize(state.config.arch if state else cfg.arch)), end="")
    try:
        outcome = train_run(cfg, run_dir, args.data_dir, KerasProgress(), state, explicit)
    except KeyboardInterrupt:
        return _interrupted(run_dir)
    print(train_summary(outcome))
    if args.report:
        from mnist_cnn.commands.report import write

        return write(run_dir, None, args.data_dir)
    return 0


def _interrupted(run_dir: Path) -> int:
    from mnist_cnn.checkpoint import STATE

    print(file=sys.stderr)
    if (run_dir / STATE).is_file():
        print(f"{PROG}: interrupted; the last completed epoch is saved. Resume with:\n"
              f"  {PROG} train --resume {run_dir}", file=sys.stderr)
    else:
        print(f"{PROG}: interrupted before the first epoch ended; nothing to resume.",
              file=sys.stderr)
    return 130
