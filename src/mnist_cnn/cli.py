"""The `mnist-cnn` command: argparse subcommands; `main(argv)` returns the exit code.

This is the only module that prints or chooses exit codes. Library errors
(`MnistCnnError`) become one line on stderr; Ctrl-C during training exits 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnist_cnn import __version__
from mnist_cnn.errors import MnistCnnError

PROG = "mnist-cnn"


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the IDX files (<dataset>/<file> or the files directly, "
                        ".gz or raw); default: $MNIST_CNN_DATA, then ~/.cache/mnist-cnn")


# ---------------------------------------------------------------- summary

def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="print the model summary table, as the lesson shows it")
    p.add_argument("--arch", default="seed", help="architecture: seed (default), seed-pool3")
    p.add_argument("--conv-only", action="store_true",
                   help="only the convolutional base (the lesson's first table)")
    p.set_defaults(func=cmd_summary)


def cmd_summary(args: argparse.Namespace) -> int:
    from mnist_cnn.model import conv_base, get_architecture
    from mnist_cnn.summary import render_keras, summarize

    arch = get_architecture(args.arch)
    print(render_keras(summarize(conv_base(arch) if args.conv_only else arch)), end="")
    return 0


# ---------------------------------------------------------------- train

def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (the lesson's settings by default)",
                       description="Train the lesson's CNN. With no flags this is the lesson: "
                       "MNIST, batch 32, 5 epochs, Adam(1e-3), fp32.")
    # Tunables default to None so that --resume can tell what the user set explicitly.
    p.add_argument("--arch", help="architecture: seed (default), seed-pool3")
    p.add_argument("--dataset", help="mnist (default) or fashion-mnist")
    p.add_argument("--recipe", help="seed (the lesson, default), fast (99%% in one epoch) or "
                   "accurate (distorted images, several epochs)")
    p.add_argument("--epochs", type=int, help="passes over the training set (recipe's default)")
    p.add_argument("--batch-size", type=int, help="images per step (recipe's default)")
    p.add_argument("--lr", type=float, help="Adam learning rate (recipe's default)")
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
    _data_dir_arg(p)
    p.set_defaults(func=cmd_train)


_TRAIN_KEYS = ("arch", "dataset", "recipe", "epochs", "batch_size", "lr", "seed",
               "validation_split", "max_steps", "device")


def cmd_train(args: argparse.Namespace) -> int:
    from mnist_cnn.console import KerasProgress, eval_line
    from mnist_cnn.data import get_dataset
    from mnist_cnn.model import get_architecture
    from mnist_cnn.summary import render_keras, summarize
    from mnist_cnn.train import TrainConfig, default_run_dir, train_run

    explicit = {k for k in _TRAIN_KEYS if getattr(args, k) is not None}
    for key in ("epochs", "batch_size", "max_steps"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            raise _usage(f"--{key.replace('_', '-')} must be at least 1")
    cfg = TrainConfig(**{k: getattr(args, k) for k in explicit})
    cfg.resolved_recipe()  # unknown names fail here, before any output
    get_dataset(cfg.dataset)
    if args.resume:
        run_dir = Path(args.resume)
    else:
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
    arch = cfg.arch
    if args.resume:  # the run's own architecture, whatever the flags say
        from mnist_cnn.checkpoint import load_state

        arch = load_state(run_dir)["config"]["arch"]
    print(render_keras(summarize(get_architecture(arch))), end="")
    try:
        outcome = train_run(cfg, run_dir, args.data_dir, KerasProgress(), bool(args.resume),
                            explicit)
    except KeyboardInterrupt:
        return _interrupted(run_dir)
    recipe = outcome.result.hyperparameters
    batches = -(-outcome.test.count // recipe["batch_size"])
    print(eval_line(batches, outcome.test_seconds, outcome.test.loss, outcome.test.accuracy))
    print(f"\nTest accuracy {outcome.test.accuracy:.2%} after "
          f"{outcome.result.train_seconds:.1f} s of training "
          f"({outcome.result.device}, {outcome.result.precision}).")
    print(f"Saved the run to {run_dir}/")
    if args.report:
        return _write_report(run_dir, None, args.data_dir)
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


# ---------------------------------------------------------------- evaluate

def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="loss, accuracy and per-class report of a saved run")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--precision", choices=("fp32", "bf16"),
                   help="numerics of the evaluation (default: the precision the run was "
                        "trained in; bf16 only where the hardware supports it)")
    _data_dir_arg(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mnist_cnn import data
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.evaluate import evaluate

    model, meta = load_model(args.run)
    dataset = data.get_dataset(meta.get("dataset", "mnist"))
    _, (x_test, y_test) = data.load_data(dataset.name, args.data_dir)
    precision = args.precision or meta.get("timing", {}).get("precision", "fp32")
    metrics = evaluate(model, x_test, y_test, precision)
    if args.json:
        print(json.dumps({"run": str(args.run), "dataset": dataset.name, **metrics.to_dict()},
                         indent=2))
        return 0
    print(f"{dataset.name} test set, {metrics.count} images: "
          f"loss {metrics.loss:.4f}, accuracy {metrics.accuracy:.2%}\n")
    print(f"{'class':>14} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for name, row in zip(dataset.classes, metrics.per_class(), strict=True):
        print(f"{name:>14} {row['precision']:9.4f} {row['recall']:9.4f} {row['f1']:9.4f} "
              f"{row['support']:8d}")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    width = max(len(str(metrics.confusion.max())), 4)
    print("      " + "".join(f"{j:>{width + 1}}" for j in range(len(dataset.classes))))
    for i, row in enumerate(metrics.confusion):
        print(f"{i:>5} " + "".join(f"{v:>{width + 1}}" for v in row))
    return 0


# ---------------------------------------------------------------- report

def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="figures and an HTML page: curves, confusion matrix, "
                       "mistakes, filters, feature maps, architecture")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default RUN/report)")
    _data_dir_arg(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    return _write_report(Path(args.run), args.out, args.data_dir)


def _write_report(run_dir: Path, out: str | None, data_dir: str | None) -> int:
    from mnist_cnn.report import write_report

    result = write_report(run_dir, out, data_dir)
    print(f"Report: test accuracy {result.test_accuracy:.2%}, {len(result.figures)} figures "
          f"in {result.out_dir}/\nOpen {result.html}")
    return 0


# ---------------------------------------------------------------- data

def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset files: where they are, whether they verify, "
                       "get them")
    p.add_argument("action", choices=("where", "verify", "fetch"),
                   help="where: the files found and the places searched; verify: check "
                        "every file against its pinned sha256; fetch: download what is "
                        "missing (or fails verification in the cache) from HTTPS mirrors")
    p.add_argument("dataset", nargs="?", default="mnist", help="mnist (default), fashion-mnist")
    _data_dir_arg(p)
    p.set_defaults(func=cmd_data)


def cmd_data(args: argparse.Namespace) -> int:
    from mnist_cnn import data
    from mnist_cnn.errors import DataError

    ds = data.get_dataset(args.dataset)
    if args.action == "where":
        from mnist_cnn.download import mirrors_for

        for why, place in data.search_dirs(args.data_dir):
            print(f"searched ({why}): {place}")
        print(f"mirrors (if nothing is found): {' '.join(mirrors_for(ds))}")
    if args.action == "fetch":
        progress = _DownloadProgress()
        for split in data.SPLITS:
            data.load_split(ds, split, args.data_dir, progress=progress)
    all_ok = True
    for split in data.SPLITS:
        spec = ds.files[split]
        path = data.find_file(ds, split, args.data_dir)
        if args.action == "where":
            print(f"{spec.name:<25} {path or 'not found'}")
            continue
        ok, status = path is not None, "not found"
        if path is not None:
            try:
                data.read_verified(path, spec)
                status = f"ok  {path}"
            except DataError as exc:
                ok, status = False, f"FAILED  {exc}"
        all_ok &= ok
        print(f"{spec.name:<25} {status}")
    return 0 if all_ok else 1


class _DownloadProgress:
    """Download progress on stderr: a live bar on a terminal, one line per file otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, url: str, done: int, total: int | None) -> None:
        if not self.tty:
            if done == 0:
                print(f"downloading {url}", file=sys.stderr)
            return
        name, size = url.rsplit("/", 1)[-1], f"/{total / 1e6:.1f}" if total else ""
        filled = int(30 * done / total) if total else 0
        print(f"\r{name} [{'=' * filled:<30}] {done / 1e6:.1f}{size} MB", end="",
              file=sys.stderr, flush=True)
        if total and done >= total:
            print(file=sys.stderr)


# ---------------------------------------------------------------- import-keras

def _add_import_keras(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-keras", help="turn a Keras-trained lesson model into a run",
                       description="Read a Keras model of the lesson's network (.keras or "
                       ".h5; needs h5py) and write a run directory that every other command "
                       "can use. The test set is evaluated to fill in the run's metrics.")
    p.add_argument("model", metavar="MODEL", help="a .keras or .h5 file saved by Keras")
    p.add_argument("--out", metavar="DIR", required=True, help="the run directory to write")
    _data_dir_arg(p)
    p.set_defaults(func=cmd_import_keras)


def cmd_import_keras(args: argparse.Namespace) -> int:
    from mnist_cnn import checkpoint, data
    from mnist_cnn.evaluate import evaluate
    from mnist_cnn.interop import import_keras
    from mnist_cnn.summary import render_keras, summarize

    model = import_keras(args.model)
    _, (x_test, y_test) = data.load_data("mnist", args.data_dir)
    test = evaluate(model, x_test, y_test)
    run = Path(args.out)
    checkpoint.save_model(run, model, {
        "dataset": "mnist", "recipe": "keras", "source": {"keras_file": str(args.model)},
        "metrics": {"test_loss": test.loss, "test_accuracy": test.accuracy}})
    checkpoint.atomic_write_text(run / checkpoint.SUMMARY, render_keras(summarize(model.arch)))
    print(f"Imported {args.model} as {model.arch.name}: test accuracy {test.accuracy:.2%}.")
    print(f"Saved the run to {run}/")
    return 0


# ---------------------------------------------------------------- bench

def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed and accuracy figures on this machine",
                       description="Train each recipe several times (seeds 0..N-1) and print "
                       "the median training time, throughput and test accuracy, then the "
                       "evaluation time and single-image latency. If TensorFlow is "
                       "importable, the lesson's Keras program runs as the peer.")
    p.add_argument("--recipes", default="fast,seed", help="comma-separated (default fast,seed)")
    p.add_argument("--runs", type=int, default=3, help="runs per recipe (default 3)")
    p.add_argument("--epochs", type=int, help="override every recipe's epochs")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--no-peer", action="store_true", help="skip the Keras peer")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _data_dir_arg(p)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from mnist_cnn import bench, data
    from mnist_cnn.train import TrainConfig

    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    for name in recipes:
        TrainConfig(recipe=name).resolved_recipe()  # unknown names fail before any work
    if args.runs < 1:
        raise _usage("--runs must be at least 1")
    mnist = data.load_data("mnist", args.data_dir)
    report = bench.BenchReport(machine=bench.machine(), recipes=[])
    model = None
    for name in recipes:
        figures, model = bench.bench_recipe(name, args.runs, mnist, args.epochs, args.device)
        report.recipes.append(figures)
    if model is not None:
        from mnist_cnn.train import bf16_supported

        precisions = ["fp32"] + (["bf16"] if bf16_supported(model.layers.conv2d.weight.device)
                                 else [])
        report.eval_seconds = {p: bench.bench_eval(model, mnist, p) for p in precisions}
        report.latency_ms = bench.bench_latency(model, mnist)
    if not args.no_peer and bench.tensorflow_available():
        report.peer = bench.bench_keras(args.runs, mnist, args.epochs or 5)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_bench(report)
    return 0


def _print_bench(report) -> None:
    m = report.machine
    print(f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads)"
          f"{', ' + m['cuda'] if m['cuda'] else ''}, {m['date']}\n")
    print(f"{'recipe':<20} {'epochs':>6} {'batch':>5} {'prec':>5} {'train s':>8} "
          f"{'img/s':>8} {'test acc (mean)':>16} {'runs':>4}")
    rows = report.recipes + ([report.peer] if report.peer else [])
    for f in rows:
        med = f.medians()
        print(f"{f.recipe:<20} {f.epochs:>6} {f.batch_size:>5} {f.precision:>5} "
              f"{med['train_seconds_median']:>8.2f} {med['images_per_second_median']:>8.0f} "
              f"{med['test_accuracy_mean']:>15.2%} {len(f.train_seconds):>4}")
    print("\ntrain s, img/s: medians; test accuracy: mean over the runs (seeds 0..N-1).")
    if report.eval_seconds is not None:
        for precision, seconds in report.eval_seconds.items():
            print(f"evaluate 10,000 test images, {precision}: {seconds:.3f} s (median of 7)")
        print(f"single-image predict: p50 {report.latency_ms['p50']:.3f} ms, "
              f"p99 {report.latency_ms['p99']:.3f} ms (1,000 calls)")


# ---------------------------------------------------------------- predict, serve

def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict the digit in your own images (photos, drawings)",
                       description="Prepare each image the way MNIST was made (grayscale, "
                       "polarity, paper and shadows removed, 20 px box, centre of mass) and "
                       "predict it. Inputs are files, folders or glob patterns; the format "
                       "comes from the file's bytes (PNG, JPEG, WebP, BMP, GIF).")
    p.add_argument("run", help="run directory (runs/<name>)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders or globs")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object an image")
    p.add_argument("--save-preprocessed", metavar="DIR",
                   help="write the 28x28 images the network saw to DIR")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from mnist_cnn.predict import Predictor, expand_inputs, predict_images

    if not 1 <= args.top_k <= 10:
        raise _usage("--top-k must be between 1 and 10")
    paths = expand_inputs(args.images)
    rows = predict_images(Predictor.from_run(args.run), paths, args.top_k,
                          args.save_preprocessed)
    if args.json:
        print(json.dumps(rows, indent=2))
    for row in rows:
        if row["error"]:
            print(f"{PROG}: {row['file']}: {row['error']}", file=sys.stderr)
        elif not args.json:
            top = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in row["top_k"])
            print(f"{row['file']}: {row['label']}  ({top})")
    return 1 if any(row["error"] for row in rows) else 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web page: draw a digit, see what each layer sees",
                       description="Serve the page and the JSON API (/api/predict, "
                       "/api/model, /docs) for one trained run.")
    p.add_argument("run", help="run directory (runs/<name>)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own model (default 1; 2 on a "
                        "2-core machine halves the latency under concurrent load)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise _usage("--port must be between 0 and 65535")
    try:
        from mnist_cnn.serve import serve
    except ImportError as exc:  # fastapi/uvicorn are the [web] extra
        raise _usage(f"serving needs the web extra ({exc.name} is missing): "
                     "pip install 'mnist-cnn[web]'") from None
    if not 1 <= args.workers <= 64:
        raise _usage("--workers must be between 1 and 64")
    serve(args.run, args.host, args.port, args.workers)
    return 0


# ---------------------------------------------------------------- main

def _usage(message: str) -> MnistCnnError:
    from mnist_cnn.errors import UsageError

    return UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="The classic CNN-on-MNIST lesson as a real tool: train, "
        "inspect and use a convolutional network on handwritten digits.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_summary, _add_train, _add_evaluate, _add_report, _add_data,
                _add_bench, _add_import_keras, _add_predict, _add_serve):
        add(sub)
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
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
