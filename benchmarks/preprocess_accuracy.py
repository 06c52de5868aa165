"""Accuracy on rendered "person's own" digits, with MNIST-style preprocessing and without.

    python benchmarks/preprocess_accuracy.py RUN_DIR [RUN_DIR ...] [--n 600] [--seed 1234]

Prints three figures for the same images: `to_mnist` (the product), a naive 28x28 resize,
and a naive resize with only the polarity fixed; then, for the product's path, each run's
accuracy by class side by side (so recipes can be compared class by class). The images
come from tests/digits.py, the same renderer the robustness test uses. Results are recorded
in docs/PREPROCESSING.md and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from digits import digit_set, naive_28  # noqa: E402
from mnist_cnn.errors import NoDigitError  # noqa: E402
from mnist_cnn.predict import Predictor  # noqa: E402
from mnist_cnn.preprocess import to_mnist  # noqa: E402


def accuracy(predictor: Predictor, images: list[np.ndarray], labels: np.ndarray) -> float:
    """Share of images whose most probable class is the label."""
    probs = predictor.probabilities(np.stack(images))
    return float((probs.argmax(axis=1) == labels).mean())


def prepared(sample) -> np.ndarray:
    """to_mnist, with an all-black image for the (counted as wrong) no-digit answers."""
    try:
        return to_mnist(sample.image)
    except NoDigitError:
        return np.zeros((28, 28), np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="run_dir")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    samples = digit_set(args.n, args.seed)
    labels = np.array([s.label for s in samples])
    start = time.perf_counter()
    ours = [prepared(s) for s in samples]
    per_image_ms = (time.perf_counter() - start) / len(samples) * 1000
    naive = [naive_28(s.image) for s in samples]
    polarity = [255 - a if s.dark_ink else a for a, s in zip(naive, samples, strict=True)]
    by_class = {}
    for run_dir in args.run_dirs:
        predictor = Predictor.from_run(run_dir)
        print(f"images: {len(samples)} rendered digits (seed {args.seed}), model {run_dir}")
        print(f"with preprocessing (to_mnist):   {accuracy(predictor, ours, labels):.2%}"
              f"  ({per_image_ms:.1f} ms an image)")
        print(f"naive 28x28 resize:              {accuracy(predictor, naive, labels):.2%}")
        print(f"naive resize, polarity fixed:    {accuracy(predictor, polarity, labels):.2%}")
        right = predictor.probabilities(np.stack(ours)).argmax(axis=1) == labels
        by_class[run_dir] = [right[labels == c].mean() for c in range(10)]
    print("\nwith preprocessing, by class: | run | " + " | ".join(map(str, range(10))) + " |")
    for run_dir, shares in by_class.items():
        print(f"| {run_dir} | " + " | ".join(f"{share:.1%}" for share in shares) + " |")

if __name__ == "__main__":
    main()
