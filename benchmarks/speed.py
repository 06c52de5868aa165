"""Every speed figure of docs/BENCHMARKS.md side by side in one run, with the load average.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/speed.py \
        [--runs 3] [--seeds 5] [--keras-python /tmp/tfvenv/bin/python] [--only a,b] \
        [--json results.json]

Each item is a whole command in its own process (what a user types), run round-robin
`--runs` times so that a change in the machine's load touches every item alike:

  keras        the lesson's Keras program (benchmarks/keras_lesson.py), fit() time
  lesson       mnist-cnn train                          (the lesson's recipe)
  lesson-ddp   mnist-cnn train --nproc 2                (2 processes x 1 thread)
  fast         mnist-cnn train --recipe fast            (seeds 0..--seeds-1, run 0 only)
  fast-ddp     mnist-cnn train --recipe fast --nproc 2
  fast-active  mnist-cnn train --recipe fast, OMP_WAIT_POLICY=ACTIVE (spinning threads)
  fast-omp-default  the same with libgomp's default wait (spin ~300k rounds, then sleep)
  (the others run as the environment says: this project's dev venvs set PASSIVE)

For each: training-loop seconds (model.json), the whole command's wall seconds, test
accuracy, and `uptime`'s load average before and after. Then the medians, the ratios the
targets are stated in, and each path's fraction of this CPU's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, "-m", "mnist_cnn", "train"]
ITEMS = {
    "keras": ([], {}),
    "lesson": ([], {}),
    "lesson-ddp": (["--nproc", "2"], {}),
    "fast": (["--recipe", "fast"], {}),
    "fast-ddp": (["--recipe", "fast", "--nproc", "2"], {}),
    "fast-active": (["--recipe", "fast"], {"OMP_WAIT_POLICY": "ACTIVE"}),
    # empty: libgomp's own default (spin a while, then sleep); the dev venvs' sitecustomize
    # only fills in PASSIVE where the variable is absent
    "fast-omp-default": (["--recipe", "fast"], {"OMP_WAIT_POLICY": ""}),
}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_item(name: str, seed: int, args, scratch: Path) -> dict:
    """One run of one item: its figures and the load average around it."""
    flags, env = ITEMS[name]
    env = {**os.environ, **env}
    if name == "keras":
        cmd = [args.keras_python, str(REPO / "benchmarks" / "keras_lesson.py"), "--seed",
               str(seed)]
        env["PYTHONPATH"] = str(REPO / "src")
    else:
        out = scratch / f"{name}-{seed}-{time.monotonic_ns()}"
        cmd = [*TRAIN, *flags, "--seed", str(seed), "--out", str(out)]
    before = load_average()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr[-500:]}")
    if name == "keras":
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    else:
        meta = json.loads((out / "model.json").read_text())
        figures = {"train_seconds": meta["timing"]["train_seconds"],
                   "test_accuracy": meta["metrics"]["test_accuracy"],
                   "steps": meta["timing"]["steps"],
                   "precision": meta["timing"]["precision"],
                   "batch_size": meta["hyperparameters"]["batch_size"]}
    return {"item": name, "seed": seed, "wall_seconds": wall, **figures,
            "load_before": before, "load_after": load_average()}


def peak_gflops() -> dict[str, float | None]:
    """This CPU's peak from /proc/cpuinfo: cores x clock x FLOP a cycle. Zen 3 and Zen 4
    have two 256-bit FMA pipes a core (2 x 8 lanes x 2 FLOP = 32 fp32 FLOP a cycle); a bf16
    dot product (VDPBF16PS, AVX512-BF16) does twice that, where the CPU has it."""
    text = Path("/proc/cpuinfo").read_text()
    mhz = [float(line.split(":")[1]) for line in text.splitlines()
           if line.startswith("cpu MHz")]
    fp32 = len(mhz) * statistics.fmean(mhz) * 1e6 * 32 / 1e9
    return {"fp32": fp32, "bf16": 2 * fp32 if "avx512_bf16" in text else None,
            "cores": len(mhz), "mhz": statistics.fmean(mhz)}


def train_flop_per_image() -> float:
    """Forward FLOP of the lesson's network counted from its layers (multiply-adds of the
    convolutions and dense layers), times 3 for forward + backward."""
    import torch

    from mnist_cnn.model import build_model

    model, flop = build_model("lesson", seed=0), []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.weight[0].numel()  # in_channels * kh * kw
            flop.append(2 * output[0].numel() * k)
        elif isinstance(module, torch.nn.Linear):
            flop.append(2 * module.weight.numel())

    for m in model.modules():
        m.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    return 3 * sum(flop)


def summarize(rows: list[dict]) -> dict:
    """Medians by item, the target ratios and the fraction of peak."""
    med = {}
    for name in dict.fromkeys(r["item"] for r in rows):
        mine = [r for r in rows if r["item"] == name]
        med[name] = {k: statistics.median(r[k] for r in mine)
                     for k in ("train_seconds", "wall_seconds", "test_accuracy")}
        med[name]["runs"] = len(mine)
        by_seed = {r["seed"]: r["test_accuracy"] for r in mine}  # a seed's runs agree
        med[name]["accuracy_mean"] = statistics.fmean(by_seed.values())
        med[name]["seeds"] = len(by_seed)
    peak, per_image = peak_gflops(), train_flop_per_image()
    ratios = {}
    for name, m in med.items():
        mine = next(r for r in rows if r["item"] == name)
        if "steps" in mine:
            images = mine["steps"] * mine["batch_size"]
            rate = images * per_image / m["train_seconds"] / 1e9
            kind = mine["precision"]  # what the run computed in (bf16 only where supported)
            m |= {"gflops": rate, "of_peak": rate / peak[kind], "precision": kind}
        m["command_over_train"] = m["wall_seconds"] / m["train_seconds"]
    if "keras" in med:
        keras = med["keras"]["train_seconds"]
        ratios = {f"{n}_over_keras": m["train_seconds"] / keras for n, m in med.items()}
    return {"medians": med, "ratios": ratios, "peak_gflops": peak,
            "train_mflop_per_image": per_image / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5, help="seeds of `fast` in run 0")
    parser.add_argument("--keras-python", default="/tmp/tfvenv/bin/python")
    parser.add_argument("--only", help="comma-separated items (default all)")
    parser.add_argument("--json", metavar="PATH", help="also write everything here")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(ITEMS)
    if "keras" in names and not Path(args.keras_python).exists():
        names.remove("keras")
        print(f"no {args.keras_python}: the Keras peer is left out", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-cnn-speed-") as scratch:
        for run in range(args.runs):
            for name in names:
                seeds = range(args.seeds) if name == "fast" and run == 0 else [run]
                for seed in seeds:
                    rows.append(run_item(name, seed, args, Path(scratch)))
                    print(json.dumps(rows[-1]), flush=True)
    result = {"rows": rows, **summarize(rows), "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
