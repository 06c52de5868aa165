"""`mnist-cnn import-keras`: a model trained by Keras, as a run every command can use."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_cnn.commands.common import add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-keras", help="turn a Keras-trained model into a run",
                       description="Read a Keras Sequential model of the lesson's layers "
                       "(.keras or .h5; needs h5py) and write a run directory that every "
                       "other command can use. The test set is evaluated to fill in the "
                       "run's metrics.")
    p.add_argument("model", metavar="MODEL", help="a .keras or .h5 file saved by Keras")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="the run directory to write (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace an existing run (or a folder of other files) as "
                        "a whole")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn.data import check_data_dir
    from mnist_cnn.interop import import_keras_run

    check_data_dir(args.data_dir)
    model, test = import_keras_run(args.model, Path(args.out), args.data_dir, args.overwrite)
    print(f"Imported {args.model}: {model.arch.param_count():,} parameters, "
          f"test accuracy {test.accuracy:.2%}.")
    print(f"Saved the run to {args.out}/")
    return 0
