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
                   "same network, 99%% in 0.8 of an epoch) or accurate (the same network, 12 "
                   "epochs: 10 on randomly distorted images, then 2 on clean ones)")
    p.add_argument("--epochs", type=int, help="whole passes over the training set (recipe's "
                   "default; fast takes 0.8 of one)")
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
                   help="run directory (default runs/<arch>-<dataset>-<recipe>-<time>); it "
                        "is built in DIR's hidden staging folder .<name>.partial beside it "
                        "and moved into place when complete")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace an existing run (or a folder of other files) as "
                        "a whole, once the new run is complete")
    p.add_argument("--resume", metavar="RUN",
                   help="continue an interrupted run (into RUN, or into --out)")
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
    from mnist_cnn.errors import UsageError
    from mnist_cnn.model import resolve_architecture

    explicit = {k for k in KEYS if getattr(args, k) is not None}
    values = {k: getattr(args, k) for k in explicit}
    if "arch" in values:
        values["arch"] = resolve_architecture(values["arch"])
    if args.overwrite and not args.out:
        raise UsageError("--overwrite goes with --out: the folder a new run may replace")
    return TrainConfig(**values), explicit  # every flag is checked, before any data is read


def _train(args: argparse.Namespace, here) -> int:
    from mnist_cnn import data
    from mnist_cnn.run import default_run_dir

    cfg, explicit = config_from(args)
    data.check_data_dir(args.data_dir)
    resume = Path(args.resume) if args.resume else None
    run_dir = Path(args.out) if args.out else resume or default_run_dir(cfg)
    if not here.main:
        return _train_peer(args, cfg, explicit)
    from mnist_cnn.console import KerasProgress, train_summary
    from mnist_cnn.distributed import state_for_peers
    from mnist_cnn.run import open_run, resumed_config, train_into, training_data
    from mnist_cnn.summary import render_keras, summarize

    target = None
    try:
        # The output folder is locked and checked, then the data found, before anything is
        # printed or trained: a refusal, a read-only folder or missing data costs seconds.
        with state_for_peers() as send, open_run(run_dir, args.overwrite, resume) as target:
            cfg = resumed_config(cfg, target.state, explicit)
            send(target.state)
            found = training_data(cfg, args.data_dir)
            print(render_keras(summarize(cfg.arch)), end="")
            outcome = train_into(target, cfg, found, KerasProgress())
    except KeyboardInterrupt:
        return _interrupted(target, here.size)
    print(train_summary(outcome))
    if args.report:
        from mnist_cnn.commands.report import write

        return write(outcome.run_dir, None, args.data_dir)
    return 0


def _train_peer(args: argparse.Namespace, cfg, explicit: set[str]) -> int:
    """A DDP rank other than 0: rank 0's state, the same data, the same steps; no files."""
    from mnist_cnn.distributed import state_from_rank0
    from mnist_cnn.run import resumed_config, training_data
    from mnist_cnn.train import fit

    state = state_from_rank0()
    cfg = resumed_config(cfg, state, explicit)
    found = training_data(cfg, args.data_dir)
    try:
        fit(cfg, found.train, found.val, None, state)
    except KeyboardInterrupt:
        return 130
    return 0


def _interrupted(target, ranks: int = 1) -> int:
    """Say where the last checkpoint is and how to resume (or that there is none)."""
    import os

    from mnist_cnn.checkpoint import load_state
    from mnist_cnn.errors import MnistCnnError

    print(file=sys.stderr)
    kept = target.kept if target is not None else None
    try:
        state = load_state(kept) if kept is not None else None
    except MnistCnnError:
        state = None
    if state is None:
        print(f"{PROG}: interrupted before the first checkpoint; nothing to resume.",
              file=sys.stderr)
        return 130
    at = (f"epoch {state.epoch + 1}, step {state.progress['step']}" if state.progress
          else f"end of epoch {state.epoch}")
    beside = ("" if kept == target.run_dir
              else f"; {target.run_dir} keeps the earlier run until this one completes")
    # Ranks all on this machine: suggest the same count (any count resumes the same run)
    same = ranks > 1 and os.environ.get("LOCAL_WORLD_SIZE") == str(ranks)
    print(f"{PROG}: interrupted; the last checkpoint ({at}) is saved in {kept}{beside}. "
          f"Resume with:\n  {PROG} train --resume {target.run_dir}"
          f"{f' --nproc {ranks}' if same else ''}", file=sys.stderr)
    return 130


# ---------------------------------------------------------------- launching the ranks

LAUNCH_KEYS = ("nproc", "nnodes", "rdzv_endpoint", "rdzv_id")


def _launch(args: argparse.Namespace, how) -> int:
    """Check what can be checked once, here, then start the ranks (each an ordinary
    `mnist-cnn train` with the same flags) under torch's elastic agent."""
    from mnist_cnn import distributed
    from mnist_cnn.checkpoint import STATE
    from mnist_cnn.run import check_resume, default_run_dir, resume_state

    cfg, explicit = config_from(args)
    resume = Path(args.resume) if args.resume else None
    if resume is not None and (how.nnodes == 1 or resume.exists()):  # else rank 0's has it
        state = resume_state(resume)
        check_resume(cfg, state.config, explicit)
        cfg = state.config
    run_dir = Path(args.out) if args.out else resume or default_run_dir(cfg)
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
    return argv + ["--out", str(run_dir)]


def launch_argv(args: argparse.Namespace) -> list[str]:
    """The launcher's own flags, as given (for the resume hint)."""
    return [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in LAUNCH_KEYS
            if getattr(args, k) is not None]
