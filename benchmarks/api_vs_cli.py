"""The lesson through the Keras-style API against `mnist-cnn train`: the same loop, so the
same speed. Runs both side by side, alternating, and prints the training times.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/api_vs_cli.py [--runs 3] [--epochs 5]

CLI: `mnist-cnn train --epochs E --out TMP`, its own "after X s of training" (the loop's time).
API: the lesson's program (examples/lesson.py's model), two figures: the same loop time
(what the shared loop counts, `Training.train_seconds`), and `model.fit(...)` timed around
the call, so that everything fit() does before its loop (checking and converting the
arrays, starting the optimiser) is counted against it too.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

API = """
import time, sys
from mnist_cnn.keras import datasets, layers, models
(x, y), _ = datasets.mnist.load_data()
x = x.reshape((60000, 28, 28, 1)) / 255.0
model = models.Sequential()
model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation='relu'))
model.add(layers.Flatten())
model.add(layers.Dense(64, activation='relu'))
model.add(layers.Dense(10, activation='softmax'))
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
start = time.perf_counter()
model.fit(x, y, epochs=int(sys.argv[1]), verbose=0)
print(f"fit {time.perf_counter() - start:.2f} loop {model._training.train_seconds:.2f}")
"""


def _load() -> str:
    return open("/proc/loadavg").read().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    cli_times, api_times, loop_times = [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-m", "mnist_cnn", "train", "--epochs",
                                  str(args.epochs), "--seed", str(run), "--out", f"{tmp}/r"],
                                 capture_output=True, text=True, check=True).stdout
        cli_times.append(float(re.search(r"after ([\d.]+) s of training", out).group(1)))
        api = subprocess.run([sys.executable, "-c", API, str(args.epochs)], capture_output=True,
                             text=True, check=True, env=os.environ).stdout
        found = re.search(r"fit ([\d.]+) loop ([\d.]+)", api)
        api_times.append(float(found.group(1)))
        loop_times.append(float(found.group(2)))
        print(f"run {run}: cli loop {cli_times[-1]:.2f} s, api loop {loop_times[-1]:.2f} s, "
              f"api fit() {api_times[-1]:.2f} s (load average {_load()})", flush=True)
    cli, api = statistics.median(cli_times), statistics.median(api_times)
    loop = statistics.median(loop_times)
    print(f"median: cli loop {cli:.2f} s, api loop {loop:.2f} s, api fit() {api:.2f} s; "
          f"api loop / cli loop = {loop / cli:.3f}, api fit() / cli loop = {api / cli:.3f}")


if __name__ == "__main__":
    main()
