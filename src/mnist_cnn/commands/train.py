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
    add_launch_flags(p)
    p.set_defaults(func=run, train_parser=p)


def add_launch_flags(p: argparse.ArgumentParser) -> None:
    """Data-parallel training (see docs/SCALING.md); under torchrun, use torchrun's own."""
    g = p.add_argument_group("data-parallel training (DDP; the batch is split over the ranks)")
    g.add_argument("--nproc", type=int, metavar="N",
                   help="processes on this machine (one per GPU, or a share of the cores)")
    g.add_argument("--nnodes", type=int, metavar="N", help="machines taking part (default 1)")
    g.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="where the machines meet: one of them, reachable by all")
    g.add_argument("--rdzv-id", metavar="ID",
                   help="names this run at the endpoint (the same on every machine)")


def run(args: argparse.Namespace) -> int:
    from mnist_cnn import distributed
    from mnist_cnn.errors import TrainingError

    if any(getattr(args, k) is not None for k in LAUNCH_KEYS):
        how = distributed.Launch(1 if args.nproc is None else args.nproc,
                                 1 if args.nnodes is None else args.nnodes,
                                 args.rdzv_endpoint, args.rdzv_id)  # checked here, always
        if how.nproc * how.nnodes > 1 or how.endpoint:
            return _launch(args, how)
    here = distributed.init()  # a rank of torchrun's world, or the only process
    try:
        return _train(args, here)
    except distributed.PeerFailed:  # rank 0 failed first and has said why
        return 1
    except distributed.DistributedError as exc:
        if distributed.quiet_peer_errors():
            return exc.exit_code
        raise
    except TrainingError as exc:  # every rank sees it alike (shared loss, shared state)
        if here.main:
            raise
        return exc.exit_code
    finally:
        distributed.finish()


def config_from(args: argparse.Namespace):
    """The TrainConfig the flags ask for, and which of its keys were given explicitly."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.model import resolve_architecture

    explicit = {k for k in KEYS if getattr(args, k) is not None}
    values = {k: getattr(args, k) for k in explicit}
    if "arch" in values:
        values["arch"] = resolve_architecture(values["arch"])
    return TrainConfig(**values), explicit  # every flag is checked, before any data is read


def _train(args: argparse.Namespace, here) -> int:
    from mnist_cnn.console import KerasProgress, train_summary
    from mnist_cnn.distributed import share_state
    from mnist_cnn.run import default_run_dir, train_run
    from mnist_cnn.summary import render_keras, summarize

    cfg, explicit = config_from(args)
    state = None
    if args.resume:
        run_dir = Path(args.resume)
        state = share_state(run_dir)  # rank 0 reads it; every rank gets it
    else:
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
    if here.main:
        print(render_keras(summarize(state.config.arch if state else cfg.arch)), end="")
    try:
        outcome = train_run(cfg, run_dir, args.data_dir,
                            KerasProgress() if here.main else None, state, explicit)
    except KeyboardInterrupt:
        return _interrupted(run_dir, here.size) if here.main else 130
    if not here.main:
        return 0
    print(train_summary(outcome))
    if args.report:
        from mnist_cnn.commands.report import write

        return write(run_dir, None, args.data_dir)
    return 0


def _interrupted(run_dir: Path, ranks: int = 1) -> int:
    import os

    from mnist_cnn.checkpoint import STATE

    print(file=sys.stderr)
    # Ranks all on this machine: suggest the same count (any count resumes the same run)
    same = ranks > 1 and os.environ.get("LOCAL_WORLD_SIZE") == str(ranks)
    if (run_dir / STATE).is_file():
        print(f"{PROG}: interrupted; the last completed epoch is saved. Resume with:\n"
              f"  {PROG} train --resume {run_dir}{f' --nproc {ranks}' if same else ''}",
              file=sys.stderr)
    else:
        print(f"{PROG}: interrupted before the first epoch ended; nothing to resume.",
              file=sys.stderr)
    return 130


# ---------------------------------------------------------------- launching the ranks

LAUNCH_KEYS = ("nproc", "nnodes", "rdzv_endpoint", "rdzv_id")


def _launch(args: argparse.Namespace, how) -> int:
    """Check what can be checked once, here, then start the ranks (each an ordinary
    `mnist-cnn train` with the same flags) under torch's elastic agent."""
    from mnist_cnn import distributed
    from mnist_cnn.checkpoint import STATE, load_state
    from mnist_cnn.run import check_resume, default_run_dir

    cfg, explicit = config_from(args)
    if args.resume:
        run_dir = Path(args.resume)
        if how.nnodes == 1 or run_dir.exists():  # elsewhere rank 0's machine has it
            state = load_state(run_dir)
            check_resume(cfg, state.config, explicit)
            cfg = state.config
    else:
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
    distributed.check_batch(cfg.resolved_recipe().batch_size, how.nproc * how.nnodes)
    try:
        return distributed.launch(how, worker_argv(args, run_dir))
    except distributed.DistributedError as exc:
        if not (run_dir / STATE).is_file():
            raise
        raise distributed.DistributedError(
            f"{exc}; the last completed epoch is saved: {PROG} train --resume {run_dir} "
            f"{' '.join(launch_argv(args))}") from None


def worker_argv(args: argparse.Namespace, run_dir: Path) -> list[str]:
    """`train` and every flag the user gave, less the launcher's, with the run directory
    fixed here (so that every rank and this launcher agree on it)."""
    argv = ["train"]
    for action in args.train_parser._actions:
        dest, value = action.dest, getattr(args, action.dest, None)
        if not action.option_strings or dest in LAUNCH_KEYS + ("help", "out") \
                or value is None or value == action.default:
            continue
        argv += [action.option_strings[-1]] + ([] if action.nargs == 0 else [str(value)])
    return argv if args.resume else argv + ["--out", str(run_dir)]


def launch_argv(args: argparse.Namespace) -> list[str]:
    """The launcher's own flags, as given (for the resume hint)."""
    return [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in LAUNCH_KEYS
            if getattr(args, k) is not None]
