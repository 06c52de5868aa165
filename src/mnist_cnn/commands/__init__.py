"""One module per `mnist-cnn` subcommand: each has `register(subparsers)`, which adds its
parser and sets `func` to its `run(args) -> exit code`."""
