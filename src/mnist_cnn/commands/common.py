"""Options and checks that several subcommands share."""

from __future__ import annotations

import argparse

PROG = "mnist-cnn"


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the IDX files (<dataset>/<file> or the files directly, "
                        ".gz or raw); default: $MNIST_CNN_DATA, then ~/.cache/mnist-cnn")


ARCH_HELP = ("architecture: lesson (the lesson's network, default), lesson-pool3 (its second "
             "form, with a third max-pool), or a JSON file of layers (see README)")
