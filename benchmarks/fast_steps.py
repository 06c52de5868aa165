"""How many steps the `fast` recipe needs, chosen on a validation split, never on the test set.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/fast_steps.py \\
        --shares 0.75,0.85,1.0 --seeds 0,1,2,3,4 [--batch 128] [--lr 0.01] \\
        [--out benchmarks/fast_steps.jsonl] [--table]

Trains the `fast` recipe with the product's own loop (`train.fit`) on the first 50,000
training images, for a share of one epoch (the one-cycle schedule is compressed to those
steps, as `--max-steps` does), and scores the last 10,000. `--batch` and `--lr` try the
recipe with another batch size and peak learning rate (a share is of that batch's epoch).
Each finished run is appended to `--out` as one JSON line; a run already there is not
trained again. `--table` prints the mean validation accuracy of each setting over its
seeds. One thread by default, so that two searches can share the two cores; the times are
not the product's (see benchmarks/speed.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from mnist_cnn import data
from mnist_cnn.config import RECIPES, TrainConfig, planned_steps
from mnist_cnn.train import fit, split_validation

VALIDATION = 1 / 6  # the first 50,000 training images train; the last 10,000 score


FAST = RECIPES["fast"]


def run_one(share: float, seed: int, train, val, batch: int = FAST.batch_size,
            lr: float = FAST.lr) -> dict:
    """One `fast` run of `share` of an epoch at `batch` and peak `lr`, scored on `val`."""
    steps = planned_steps(replace(FAST, epochs=1, batch_size=batch, steps_share=share),
                          len(train[0]))
    result = fit(TrainConfig(recipe="fast", seed=seed, device="cpu", epochs=1, max_steps=steps,
                             batch_size=batch, lr=lr), train, val)
    return {"share": share, "seed": seed, "batch": batch, "lr": lr, "steps": result.steps,
            "val_accuracy": result.history[-1]["val_accuracy"],
            "val_loss": result.history[-1]["val_loss"],
            "train_seconds": round(result.train_seconds, 1),
            "threads": torch.get_num_threads(), "loadavg": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _setting(record: dict) -> tuple[int, float, float]:
    """(batch, lr, share); records from before --batch and --lr ran at batch 128, lr 0.01."""
    return (record.get("batch", 128), record.get("lr", 0.01), record["share"])


def print_table(out: Path) -> None:
    """Mean validation accuracy by setting over the recorded seeds."""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    print("| batch | peak lr | share of an epoch | steps | seeds | validation accuracy, each seed "
          "| mean |")
    print("|---|---|---|---|---|---|---|")
    for batch, lr, share in sorted({_setting(r) for r in rows}):
        mine = sorted((r for r in rows if _setting(r) == (batch, lr, share)),
                      key=lambda r: r["seed"])
        each = ", ".join(f"{r['val_accuracy']:.2%}" for r in mine)
        mean = statistics.fmean(r["val_accuracy"] for r in mine)
        print(f"| {batch} | {lr:g} | {share:g} | {mine[0]['steps']} | {len(mine)} | {each} "
              f"| **{mean:.2%}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shares", default="0.75,0.85,1.0")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--batch", type=int, default=FAST.batch_size)
    parser.add_argument("--lr", type=float, default=FAST.lr)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/fast_steps.jsonl"))
    parser.add_argument("--table", action="store_true", help="print the results, train nothing")
    args = parser.parse_args()
    if args.table:
        return print_table(args.out)
    torch.set_num_threads(args.threads)
    (x, y), _ = data.load_data("mnist")  # the test images are never used here
    train, val = split_validation(x, y, VALIDATION)
    done = set()
    if args.out.is_file():
        done = {(*_setting(r), r["seed"])
                for r in map(json.loads, args.out.read_text().splitlines())}
    for share in map(float, args.shares.split(",")):
        for seed in map(int, args.seeds.split(",")):
            if (args.batch, args.lr, share, seed) in done:
                continue
            record = run_one(share, seed, train, val, args.batch, args.lr)
            with args.out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"{record['val_accuracy']:.4f}  batch {args.batch}  lr {args.lr:g}  "
                  f"share {share:g}  seed {seed}  "
                  f"{record['steps']} steps  {record['train_seconds']} s", flush=True)


if __name__ == "__main__":
    main()
