"""How long `mnist-cnn report RUN` takes: wall, user and system time of whole runs, each with
the load average before it; optionally side by side (alternating) with another checkout's
source, to compare before and after a change on the same shared machine.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/report_time.py RUN [--runs 3]
        [--compare-src ../main/src] [--phases]

--compare-src DIR runs `python -m mnist_cnn report` with PYTHONPATH=DIR (another checkout's
src/ folder) before each run of this one. --phases also times the parts in one process:
the lesson's numbers, saliency, calibration, robustness, and drawing + writing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"


def _load() -> float:
    return os.getloadavg()[0]


def timed_run(run: str, src: Path, out: str) -> dict[str, float]:
    """One `python -m mnist_cnn report` in a child process: wall, user, sys seconds."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load, start = _load(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnist_cnn", "report", run, "--out", out],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "user": after.ru_utime - before.ru_utime,
            "sys": after.ru_stime - before.ru_stime, "load": load}


def phases(run: str, out: str) -> dict[str, float]:
    """Seconds of each part of the report, in this process (this checkout's code)."""
    sys.path.insert(0, str(SRC))
    import torch

    from mnist_cnn import calibration, data, report, report_trust, robustness, saliency
    from mnist_cnn.device import to_tensors
    from mnist_cnn.evaluate import predict_logits
    from mnist_cnn.predict import Predictor

    def clock(label: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = work()
        times[label] = time.perf_counter() - start
        return result

    times: dict[str, float] = {}
    cpu = torch.device("cpu")
    written = clock("whole report (write_report)", lambda: report.write_report(run, out))
    trust = written.data.trust
    clock("  compute_report (all numbers)", lambda: report.compute_report(run))
    predictor = Predictor.from_run(run)
    model, meta = predictor.model, predictor.meta
    train, (images, labels) = data.load_data(meta.dataset)
    x, y = to_tensors(images, labels, cpu, channels_last=True)
    logits = clock("    test-set pass", lambda: predict_logits(model, x))
    explain = images[trust.mistakes + trust.examples]
    xs = torch.tensor(explain, dtype=torch.float32)[:, None] / 255.0
    clock("    saliency (integrated gradients)", lambda: saliency.integrated_gradients(
        model, xs, steps=report_trust.IG_STEPS))
    part = report_trust.held_out(meta, *train)
    xf, yf = to_tensors(part.images, part.labels, cpu, channels_last=True)
    clock("    calibration (held-out pass + fit)", lambda: calibration.calibrate(
        predict_logits(model, xf), yf, logits, y))
    n = report_trust.ROBUSTNESS_IMAGES
    clock("    robustness sweep", lambda: robustness.sweep(model, x[:n], y[:n]))
    times["  drawing and writing (whole - compute)"] = (
        times["whole report (write_report)"] - times["  compute_report (all numbers)"])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare-src", type=Path, help="another checkout's src/ folder")
    parser.add_argument("--phases", action="store_true")
    args = parser.parse_args()
    sides = [("other", args.compare_src)] if args.compare_src else []
    sides.append(("this", SRC))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, src in sides:
                r = timed_run(args.run, src, str(Path(tmp) / name))
                results[name].append(r)
                print(f"run {i + 1} {name:5s}: wall {r['wall']:5.1f} s, user {r['user']:5.1f} s, "
                      f"sys {r['sys']:4.1f} s, load average before {r['load']:.2f}", flush=True)
        for name, rows in results.items():
            print(f"{name}: median wall {statistics.median(r['wall'] for r in rows):.1f} s, "
                  f"median user+sys {statistics.median(r['user'] + r['sys'] for r in rows):.1f} s")
        if args.phases:
            for label, seconds in phases(args.run, str(Path(tmp) / "phases")).items():
                print(f"{label:40s} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
