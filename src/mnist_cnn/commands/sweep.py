"""`mnist-cnn sweep SPACE.json`: a hyperparameter study on Optuna (the `[sweep]` extra)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from mnist_cnn.commands.common import PROG, add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="search recipe settings and architectures (needs the [sweep] extra)",
        description="Run a study of N trials over the settings in SPACE.json (see "
        "docs/SCALING.md). Each trial is a run directory under OUT/trials, scored on its "
        "validation split; its test accuracy is shown only as information. Workers share "
        "the study: a journal file in OUT, or --storage URL across machines (run the same "
        "command on each). Running the command again continues the study.")
    p.add_argument("space", metavar="SPACE.json", help="the search space")
    p.add_argument("--trials", type=int, default=20, help="trials in the study (default 20)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes on this machine (default 1; the cores are shared)")
    p.add_argument("--out", metavar="DIR", default="sweeps/sweep",
                   help="where the trials, the journal and the results go (default "
                        "sweeps/sweep)")
    p.add_argument("--storage", metavar="URL",
                   help="an RDB URL (e.g. postgresql://user@host/db) shared by machines; "
                        "default: OUT/study.journal")
    p.add_argument("--study", default="mnist-cnn", help="the study's name (default mnist-cnn)")
    p.add_argument("--seed", type=int, default=0, help="the samplers' seed (default 0)")
    p.add_argument("--ensemble-top", type=int, metavar="K", default=5,
                   help="list the best K runs in OUT/top.txt for an ensemble (default 5)")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn import sweep, sweep_results
    from mnist_cnn.console import sweep_table
    from mnist_cnn.errors import UsageError

    if importlib.util.find_spec("optuna") is None:
        raise UsageError("sweep needs Optuna: pip install 'mnist-cnn[sweep]'")
    for name, value, high in (("--trials", args.trials, 100_000), ("--workers", args.workers, 64),
                              ("--ensemble-top", args.ensemble_top, 1000)):
        if not 1 <= value <= high:
            raise UsageError(f"{name} must be in 1..{high}")
    study = sweep.Sweep(sweep.read_space(Path(args.space)), Path(args.out), args.trials,
                        args.storage, args.study, args.data_dir, args.seed)
    try:
        codes = sweep.run_workers(study, args.workers)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; finished trials are kept. Run the same command to "
              "continue the study.", file=sys.stderr)
        return 130
    rows = sweep_results.results(study)
    paths = sweep_results.write_results(rows, study.out, args.ensemble_top)
    print(sweep_table(rows))
    print(f"\nTrials: {paths['csv']}; plot: {paths['plot']}; the best "
          f"{args.ensemble_top} runs: {paths['top']}")
    failed = [(i, c) for i, c in enumerate(codes) if c != 0]
    if failed:
        i, code = failed[0]
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        print(f"{PROG}: error: sweep worker {i} {how}; its trial is marked failed. Run the "
              "same command to finish the study.", file=sys.stderr)
        return 1
    return 0
