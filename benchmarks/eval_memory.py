"""What evaluation's batch size and glibc's memory settings cost `evaluate --tta N`.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/eval_memory.py RUN \\
        [--tta 9] [--rounds 3] [--images 10000]

Four ways, each in its own process (glibc's settings are per process), alternating for
`--rounds` rounds: the views of `EVAL_BATCH` images in one forward pass (before
2026-12-07: 9 x 256 images with `--tta 9`) or `EVAL_BATCH` images in all (now), each with
glibc's default thresholds and with `device.keep_freed_memory()` (which training calls).
Prints the wall time, the system time and the page faults of one evaluation of the test set
(after one warm-up pass), and the median over the rounds; every way must give the same
accuracy. docs/BENCHMARKS.md, "Evaluation and single-image prediction".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

WAYS = {"views of 256 images, glibc default": ("old", "default"),
        "views of 256 images, keep_freed_memory": ("old", "keep"),
        "256 images in all, glibc default": ("new", "default"),
        "256 images in all, keep_freed_memory": ("new", "keep")}

CHILD = """
import json, resource, sys, time
from mnist_cnn.device import keep_freed_memory, to_tensors, use_bf16
batch, memory, run = sys.argv[1:4]
tta, images = int(sys.argv[4]), int(sys.argv[5])
if memory == "keep":
    keep_freed_memory()
from mnist_cnn import data
from mnist_cnn.averaging import copies_per_image
from mnist_cnn.checkpoint import load_model
from mnist_cnn.evaluate import EVAL_BATCH, predict_logits
from mnist_cnn.tta import with_tta
model, meta = load_model(run)
model = with_tta(model, tta)
device = next(model.parameters()).device
x, y = data.load_test(meta.dataset, None, recorded=meta.data_dir)
x, y = to_tensors(x[:images], y[:images], device, channels_last=True)
# "old": every view of EVAL_BATCH images in one pass, as before predict_logits divided by them
size = EVAL_BATCH * copies_per_image(model) if batch == "old" else EVAL_BATCH
bf16 = use_bf16(meta.timing.precision, device)
predict_logits(model, x[:size], size, bf16)  # warm-up
before, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
accuracy = (predict_logits(model, x, size, bf16).argmax(1) == y).float().mean().item()
wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "sys": after.ru_stime - before.ru_stime,
                  "faults": after.ru_minflt - before.ru_minflt, "accuracy": accuracy}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--tta", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=10000)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    for r in range(args.rounds):
        for way, (batch, memory) in WAYS.items():
            done = subprocess.run([sys.executable, "-c", CHILD, batch, memory, args.run,
                                   str(args.tta), str(args.images)],
                                  capture_output=True, text=True, check=True)
            results[way].append(json.loads(done.stdout.strip().splitlines()[-1]))
            last = results[way][-1]
            print(f"round {r + 1}, {way}: {last['wall']:.2f} s, sys {last['sys']:.2f} s, "
                  f"{last['faults']:,} faults, accuracy {last['accuracy']:.4f}, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"\n{args.run}, --tta {args.tta}, {args.images} images, median of {args.rounds}:")
    for way, runs in results.items():
        print(f"  {way:40s} {statistics.median(r['wall'] for r in runs):6.2f} s wall, "
              f"{statistics.median(r['sys'] for r in runs):5.2f} s sys, "
              f"{statistics.median(r['faults'] for r in runs):>12,.0f} faults")
    if len({r["accuracy"] for runs in results.values() for r in runs}) != 1:
        sys.exit("the ways gave different accuracies")


if __name__ == "__main__":
    main()
