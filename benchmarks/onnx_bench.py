"""onnxruntime beside torch on one run: single-image latency and 10,000-image throughput.

    python benchmarks/onnx_bench.py RUN [--runs 5] [--singles 2000] [--data-dir DIR]

Exports RUN to ONNX in a temporary folder (what `mnist-cnn export RUN --format onnx`
writes), then alternates, for each of --runs rounds, torch (`mnist_cnn.predict.Predictor`,
the warm in-process path that `predict` and `serve` use) and onnxruntime (CPU provider),
each with its default threads and with one thread, on the same inputs:

- single image: --singles calls with one (28, 28) uint8 test image each, converted to
  floats inside the timed call for both (p50 and p99 per round);
- throughput: all 10,000 test images in batches of 256 (evaluate's batch size).

Prints each round and the medians over rounds as JSON, with the load average before and
after (the machine is shared: compare the two side by side only).
Results are recorded in docs/BENCHMARKS.md ("ONNX export").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mnist_cnn import data
from mnist_cnn.checkpoint import load_model
from mnist_cnn.evaluate import EVAL_BATCH
from mnist_cnn.export_onnx import INPUT_NAME, OUTPUT_NAME, write_onnx
from mnist_cnn.predict import Predictor


def _ort_session(path: Path, threads: int = 0):
    """An onnxruntime CPU session; `threads` 0 is its default (one per physical core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _singles(predict, images: np.ndarray, count: int) -> tuple[float, float]:
    """p50 and p99 in ms of `predict(image)` over `count` images (after a warm-up)."""
    for image in images[:50]:
        predict(image)
    times = []
    for image in images[:count]:
        start = time.perf_counter()
        predict(image)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _throughput(predict_batch, images: np.ndarray) -> float:
    """Images per second over all of `images`, in batches of EVAL_BATCH."""
    predict_batch(images[:EVAL_BATCH])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(images), EVAL_BATCH):
        predict_batch(images[i:i + EVAL_BATCH])
    return len(images) / (time.perf_counter() - start)


def _engines(run: Path, folder: Path) -> dict[str, tuple]:
    """name -> (predict(uint8 images) -> probabilities, torch threads to use meanwhile)."""
    model, meta = load_model(run)
    predictor = Predictor(model, meta)
    path = folder / "model.onnx"
    write_onnx(model, path)

    def ort_engine(session):
        def probabilities(images: np.ndarray) -> np.ndarray:
            x = (np.asarray(images, np.float32) / 255).reshape(-1, 1, 28, 28)
            return session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        return probabilities

    threads = torch.get_num_threads()
    return {f"torch, {threads} threads": (predictor.probabilities, threads),
            "torch, 1 thread": (predictor.probabilities, 1),
            "onnxruntime, default threads": (ort_engine(_ort_session(path)), threads),
            "onnxruntime, 1 thread": (ort_engine(_ort_session(path, 1)), threads)}


def bench(run: Path, runs: int, singles: int, data_dir: str | None) -> dict:
    _, (x_test, _) = data.load_data("mnist", data_dir)
    load_before = os.getloadavg()
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        engines = _engines(run, Path(tmp))
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
        for i in range(runs):
            for name, (predict, torch_threads) in engines.items():
                torch.set_num_threads(torch_threads)
                p50, p99 = _singles(predict, x_test, singles)
                rate = _throughput(predict, x_test)
                rounds[name].append({"p50_ms": p50, "p99_ms": p99, "images_per_s": rate})
                print(f"round {i + 1} {name:<29} p50 {p50:.3f} ms  p99 {p99:.3f} ms  "
                      f"{rate:,.0f} images/s", flush=True)
        torch.set_num_threads(threads)
    median = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
              for name, rs in rounds.items()}
    import onnxruntime

    return {"median": median, "rounds": rounds, "runs": runs, "singles": singles,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "cores": os.cpu_count(), "load_before": load_before,
            "load_after": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    print(json.dumps(bench(args.run, args.runs, args.singles, args.data_dir), indent=2))


if __name__ == "__main__":
    main()
