"""Choose the `accurate` recipe's settings on a validation split, never on the test set.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/accurate_search.py \\
        --base epochs=8,rotate=10 --vary lr=5e-3,1e-2,2e-2 --seeds 0 [--out FILE.jsonl] \\
        [--arch lesson|FILE.json]

Trains the lesson's network (or `--arch`: a named architecture or a JSON file of layers)
with the product's own loop (`train.fit`) on the first 50,000 training images and scores it
on the last 10,000. `--base` sets values on top of DEFAULTS;
each `--vary key=v1,v2,...` is crossed with the others. Every finished run is appended to
`--out` as one JSON line (settings, seed, validation accuracy after every epoch, steps, time,
load average); a run already in that file is not trained again, so a search can be resumed.
`--table` prints every recorded run as a Markdown table instead of training.
One thread by default: on a shared machine several searches then run side by side without
fighting over cores (so the times are not the product's times; measure those separately).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from dataclasses import fields
from pathlib import Path

import torch

from mnist_cnn import data
from mnist_cnn.augment import Augment
from mnist_cnn.config import RECIPES, Recipe, TrainConfig
from mnist_cnn.model import resolve_architecture
from mnist_cnn.train import fit, split_validation

VALIDATION = 1 / 6  # the first 50,000 training images train; the last 10,000 score
SEARCH = "search"  # the recipe name the runs are registered under
DEFAULTS: dict[str, float] = {
    # Recipe fields (the fast recipe's, with more epochs) ...
    "epochs": 8, "batch_size": 128, "lr": 1e-2, "warmup": 0.2, "label_smoothing": 0.1,
    # ... and Augment fields (the earlier probe's ranges).
    "rotate": 10.0, "scale": 0.1, "shift": 0.1, "shear": 0.0, "elastic": 0.0,
    "elastic_grid": 4, "until": 1.0,
}
_AUGMENT_KEYS = {f.name for f in fields(Augment)}
_INT_KEYS = {"epochs", "batch_size", "elastic_grid"}


def _parse_pairs(text: str) -> dict[str, str]:
    pairs = dict(item.split("=", 1) for item in text.split(",") if item)
    unknown = set(pairs) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f"unknown settings: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(DEFAULTS)}")
    return pairs


def _value(key: str, text: str) -> float:
    return int(text) if key in _INT_KEYS else float(text)


def recipe_of(settings: dict[str, float]) -> Recipe:
    """The Recipe (fast's fixed choices: one-cycle, bf16, channels-last) for `settings`."""
    aug = Augment(**{k: v for k, v in settings.items() if k in _AUGMENT_KEYS})
    return Recipe(SEARCH, epochs=int(settings["epochs"]), batch_size=int(settings["batch_size"]),
                  lr=settings["lr"], schedule="onecycle", warmup=settings["warmup"],
                  precision="bf16", channels_last=True,
                  label_smoothing=settings["label_smoothing"], augment=aug)


def run_one(settings: dict[str, float], seed: int, train, val, arch: str = "lesson") -> dict:
    """Train once on `train`, score on `val`; a JSON-able record of the run."""
    RECIPES[SEARCH] = recipe_of(settings)  # fit() looks recipes up by name
    config = TrainConfig(recipe=SEARCH, seed=seed, device="cpu",
                         arch=resolve_architecture(arch))
    result = fit(config, train, val)
    return {"settings": settings, "seed": seed, **({} if arch == "lesson" else {"arch": arch}),
            "val_accuracy": result.history[-1]["val_accuracy"],
            "val_loss": result.history[-1]["val_loss"],
            "val_by_epoch": [round(h["val_accuracy"], 4) for h in result.history],
            "train_accuracy": result.history[-1]["accuracy"],  # on distorted images
            "steps": result.steps, "train_seconds": round(result.train_seconds, 1),
            "threads": torch.get_num_threads(), "loadavg": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _done(out: Path) -> set[str]:
    if not out.is_file():
        return set()
    return {_key(r["settings"], r["seed"], r.get("arch", "lesson"))
            for r in map(json.loads, out.read_text().splitlines())}


def _key(settings: dict[str, float], seed: int, arch: str) -> str:
    return json.dumps([settings, seed] + ([] if arch == "lesson" else [arch]), sort_keys=True)


def _changed(settings: dict[str, float]) -> str:
    diff = {k: v for k, v in settings.items() if v != DEFAULTS.get(k)}
    return ", ".join(f"{k}={v:g}" for k, v in diff.items()) or "defaults"


def print_table(out: Path) -> None:
    """Every run in `out`, in the order it finished, as a Markdown table."""
    print("| settings (changed from the defaults) | seed | epochs | steps "
          "| val accuracy | val accuracy by epoch |")
    print("|---|---|---|---|---|---|")
    for r in map(json.loads, out.read_text().splitlines()):
        by_epoch = " ".join(f"{a:.2%}" for a in r["val_by_epoch"])
        arch = "" if r.get("arch", "lesson") == "lesson" else f"arch {r['arch']}, "
        print(f"| {arch}{_changed(r['settings'])} | {r['seed']} | {r['settings']['epochs']} "
              f"| {r['steps']} | **{r['val_accuracy']:.2%}** | {by_epoch} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="", help="k=v,... on top of the defaults")
    parser.add_argument("--vary", action="append", default=[], help="k=v1,v2,... (repeatable)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch", default="lesson", help="a named architecture or a JSON file")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/accurate_search.jsonl"))
    parser.add_argument("--table", action="store_true", help="print the results, train nothing")
    args = parser.parse_args()
    if args.table:
        return print_table(args.out)
    torch.set_num_threads(args.threads)

    base = {**DEFAULTS, **{k: _value(k, v) for k, v in _parse_pairs(args.base).items()}}
    axes = []
    for spec in args.vary:
        key, values = spec.split("=", 1)
        _parse_pairs(f"{key}=0")
        axes.append([(key, _value(key, v)) for v in values.split(",")])
    (x, y), _ = data.load_data("mnist")  # the test images are never used here
    train, val = split_validation(x, y, VALIDATION)
    done = _done(args.out)
    for combo in itertools.product(*axes):
        settings = {**base, **dict(combo)}
        for seed in (int(s) for s in args.seeds.split(",")):
            if _key(settings, seed, args.arch) in done:
                continue
            record = run_one(settings, seed, train, val, args.arch)
            with args.out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"{record['val_accuracy']:.4f}  seed {seed}  {args.arch}  {_changed(settings)}  "
                  f"by epoch {record['val_by_epoch']}  {record['train_seconds']} s "
                  f"(load {record['loadavg']:.1f})", flush=True)


if __name__ == "__main__":
    main()
