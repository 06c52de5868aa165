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


def add_tta(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tta", type=int, default=1, metavar="N",
                   help="test-time augmentation: average the probabilities over the image "
                        "and N-1 fixed small distortions of it (shifts of one pixel, "
                        "rotations of 10 degrees, scalings of 10%%; see docs/ACCURACY.md); "
                        "N from 1 (default: the image alone) to 9")
