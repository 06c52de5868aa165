"""The `mnist-cnn` command: argparse subcommands (one module each in `commands/`);
`main(argv)` returns the exit code.

Only this module and the command modules print or choose exit codes. Library errors
(`MnistCnnError`) become one line on stderr; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys

from mnist_cnn import __version__
from mnist_cnn.commands import (
    bench,
    data,
    ensemble,
    evaluate,
    export,
    import_keras,
    predict,
    report,
    serve,
    summary,
    sweep,
    train,
)
from mnist_cnn.commands.common import PROG
from mnist_cnn.errors import MnistCnnError

COMMANDS = (summary, train, evaluate, report, predict, serve, export, ensemble, data, bench,
            import_keras, sweep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="The classic CNN-on-MNIST lesson as a real tool: train, "
        "inspect and use a convolutional network on handwritten digits.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 error, 2 usage, 130 interrupted)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except MnistCnnError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the environment (a name too long, no permission), not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{PROG}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
