"""Choose the best single model and the best ensemble on a validation split, never the test set.

    # one architecture and seed: trains on the first 50,000 training images, scores the last
    # 10,000, writes an ordinary run directory (no test figure in it) and one JSON line
    MNIST_CNN_DATA=../shared/data python benchmarks/accuracy_search.py train \\
        --arch examples/accuracy/wide-bn.json --seed 0 --out runs/search [--log FILE.jsonl] \\
        [--augment elastic=1.5,...]

    # every trained run, every ensemble of them (up to --max-members), with and without
    # test-time augmentation: validation accuracy only
    MNIST_CNN_DATA=../shared/data python benchmarks/accuracy_search.py choose runs/search/* \\
        [--tta 1,5,9] [--max-members 3] [--by-arch]

`train` uses the product's own loop (`run.train_run` is not used because it evaluates on the
test set; `--augment` changes fields of the recipe's distortion, `Augment`); the run's
model.json holds the validation figures, so `mnist-cnn ensemble` and
`mnist-cnn evaluate` take it like any run. The test set is read only afterwards, once, by
`mnist-cnn evaluate` on the chosen run and ensemble (see docs/ACCURACY.md).
One torch thread: the machine is shared, and runs then take turns instead of fighting.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from mnist_cnn import data
from mnist_cnn.augment import Augment
from mnist_cnn.checkpoint import RunMeta, Timing
from mnist_cnn.config import RECIPES, TrainConfig
from mnist_cnn.model import resolve_architecture
from mnist_cnn.run import PREPROCESSING, versions, write_run
from mnist_cnn.train import fit, split_validation

VALIDATION = 1 / 6  # the last 10,000 of the 60,000 training images
# The longest recipe there is: "accurate" (trained on distorted images) where it exists.
DEFAULT_RECIPE = "accurate" if "accurate" in RECIPES else "fast"


def _augment_changes(text: str) -> dict[str, float]:
    """'elastic=1.5,rotate=10' -> the Augment fields to change."""
    known = {f.name: f.type for f in fields(Augment)}
    changes = dict(item.split("=", 1) for item in text.split(",") if item)
    unknown = set(changes) - set(known)
    if unknown:
        raise SystemExit(f"unknown --augment fields: {', '.join(sorted(unknown))}")
    return {k: int(v) if known[k] == "int" else float(v) for k, v in changes.items()}


def _train(args: argparse.Namespace) -> None:
    arch = resolve_architecture(args.arch)
    changes = _augment_changes(args.augment)
    if changes:  # the run keeps its recipe's name; its hyperparameters say what changed
        recipe = RECIPES[args.recipe]
        RECIPES[args.recipe] = replace(recipe, augment=replace(recipe.augment or Augment(),
                                                               **changes))
    cfg = TrainConfig(arch=arch, recipe=args.recipe, epochs=args.epochs, seed=args.seed,
                      validation_split=VALIDATION)
    tag = "".join(f"-{k}{v:g}" for k, v in changes.items())
    out = Path(args.out) / f"{arch.name}-e{cfg.resolved_recipe().epochs}{tag}-s{args.seed}"
    if (out / "model.json").exists():
        print(f"{out}: already trained")
        return
    (x, y), _ = data.load_data(cfg.dataset)
    train_part, val_part = split_validation(x, y, VALIDATION)
    load_before = os.getloadavg()[0]
    result = fit(cfg, train_part, val_part)
    last = result.history[-1]
    meta = RunMeta(architecture=result.model.arch, dataset=cfg.dataset, recipe=cfg.recipe,
                   hyperparameters=result.hyperparameters, preprocessing=PREPROCESSING,
                   metrics={k: v for k, v in last.items() if k != "epoch"},
                   timing=Timing(result.train_seconds, result.steps, result.device,
                                 result.precision),
                   versions=versions(), date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), config=cfg)
    write_run(out, result.model, meta, result.history)
    line = {"run": str(out), "arch": arch.name, "params": arch.param_count(),
            "recipe": cfg.recipe, **({"augment": changes} if changes else {}),
            "epochs": len(result.history), "seed": args.seed,
            "val_accuracy": last["val_accuracy"],
            "val_by_epoch": [round(h["val_accuracy"], 4) for h in result.history],
            "train_seconds": round(result.train_seconds, 1), "threads": torch.get_num_threads(),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    print(json.dumps(line))
    if args.log:
        with open(args.log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


def _validation_probabilities(run: str, tta: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(10000, 10) probabilities of a run on the validation images, their labels, and the
    run's architecture name."""
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.device import to_tensors, use_bf16
    from mnist_cnn.evaluate import predict_logits
    from mnist_cnn.tta import with_tta

    model, meta = load_model(run)
    (x, y), _ = data.load_data(meta.dataset)
    _, (xv, yv) = split_validation(x, y, VALIDATION)
    xt, _ = to_tensors(xv, yv, torch.device("cpu"), channels_last=True)
    bf16 = use_bf16(meta.timing.precision, torch.device("cpu"))  # as `evaluate` scores it
    logits = predict_logits(with_tta(model, tta), xt, bf16=bf16)
    return torch.softmax(logits, dim=1).numpy(), yv, model.arch.name


def _choose(args: argparse.Namespace) -> None:
    runs = sorted(args.runs)
    for tta in (int(t) for t in args.tta.split(",")):
        probs, labels, archs = {}, None, {}
        for run in runs:
            probs[run], labels, archs[run] = _validation_probabilities(run, tta)
        rows = []
        for k in range(1, args.max_members + 1):
            for group in itertools.combinations(runs, k):
                mean = np.mean([probs[r] for r in group], axis=0)
                rows.append(((mean.argmax(1) == labels).mean(), group))
        rows.sort(key=lambda r: (-r[0], len(r[1])))
        for accuracy, group in rows[:args.show]:
            names = " + ".join(Path(r).name for r in group)
            print(f"tta {tta}: {accuracy:.2%} ({int(round((1 - accuracy) * len(labels)))} "
                  f"errors)  {names}")
        if args.by_arch:
            _print_by_make_up(rows, archs, tta)


def _print_by_make_up(rows: list, archs: dict[str, str], tta: int) -> None:
    """Each make-up (how many runs of each architecture), over every group of runs that has
    it: the mean, lowest and highest validation accuracy. A make-up is a design one can
    choose; a single group is also a draw of seeds."""
    by: dict[tuple, list[float]] = {}
    for accuracy, group in rows:
        counts = Counter(archs[run] for run in group)
        by.setdefault(tuple(sorted(counts.items())), []).append(accuracy)
    for make_up, accs in sorted(by.items(), key=lambda kv: -float(np.mean(kv[1]))):
        what = " + ".join(f"{n} {arch}" for arch, n in make_up)
        print(f"tta {tta}: mean {np.mean(accs):.3%} (lowest {min(accs):.2%}, highest "
              f"{max(accs):.2%}, {len(accs)} groups)  {what}")


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--arch", required=True)
    t.add_argument("--recipe", default=DEFAULT_RECIPE)
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs/search")
    t.add_argument("--log", help="append the result to this JSON-lines file")
    t.add_argument("--augment", default="", help="k=v,... fields of the recipe's Augment")
    c = sub.add_parser("choose")
    c.add_argument("runs", nargs="+")
    c.add_argument("--tta", default="1")
    c.add_argument("--max-members", type=int, default=3)
    c.add_argument("--show", type=int, default=8)
    c.add_argument("--by-arch", action="store_true",
                   help="also each make-up (runs per architecture) over all its groups")
    args = parser.parse_args()
    (_train if args.command == "train" else _choose)(args)


if __name__ == "__main__":
    main()
