"""`mnist-cnn summary`: the model summary table, as the lesson prints it."""

from __future__ import annotations

import argparse

from mnist_cnn.commands.common import ARCH_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="print the model summary table, as the lesson shows it",
                       description="Print model.summary() for an architecture, in the "
                       "lesson's Keras layout: each layer's name, output shape and "
                       "parameters.")
    p.add_argument("--arch", default="lesson", help=ARCH_HELP)
    p.add_argument("--conv-only", action="store_true",
                   help="only the convolutional base (the lesson's first table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn.model import conv_base, resolve_architecture
    from mnist_cnn.summary import render_keras, summarize

    arch = resolve_architecture(args.arch)
    print(render_keras(summarize(conv_base(arch) if args.conv_only else arch)), end="")
    return 0
