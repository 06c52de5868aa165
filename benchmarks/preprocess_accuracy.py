"""Accuracy on digits as people write, type and photograph them, with MNIST-style
preprocessing and without.

    python benchmarks/preprocess_accuracy.py RUN_DIR [RUN_DIR ...]
        [--sources digits,pen2,fonts2,photo] [--n-per-source 800] [--seed 1234]
        [--kept-aside] [--json PATH]

The images come from benchmarks/people_digits.py: `digits` (tests/digits.py, the renderer
the robustness test uses), a second pen model `pen2`, other fonts `fonts2` and `pen2`
digits photographed on notebook paper `photo`. They are rendered and prepared once, then
every run reads the same arrays. For each run: the accuracy with `to_mnist` (the product),
with a naive 28x28 resize, and with a naive resize with only the polarity fixed; then, with
`to_mnist`, tables of every run side by side by source and by class (n, wrong, accuracy),
so recipes can be compared class by class. `--json PATH` writes all of these numbers.

`--kept-aside` draws the kept-aside set (people_digits.KEPT_ASIDE_SEED): only for final
figures. `--sources digits --n-per-source 600` reproduces the figures measured before the
other sources existed (`--n` is the same option). Results are recorded in
docs/PREPROCESSING.md and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from people_digits import (  # noqa: E402
    DEFAULT_N_PER_SOURCE,
    DEFAULT_SEED,
    KEPT_ASIDE_SEED,
    SOURCES,
    Sample,
    people_set,
)

from digits import naive_28  # noqa: E402
from mnist_cnn.errors import NoDigitError  # noqa: E402
from mnist_cnn.predict import Predictor  # noqa: E402
from mnist_cnn.preprocess import to_mnist  # noqa: E402


@dataclass
class Prepared:
    """The rendered set, as the model sees it along each path, rendered once for all runs."""

    labels: np.ndarray  # (N,)
    sources: np.ndarray  # (N,) source names
    ours: np.ndarray  # (N, 28, 28) through to_mnist
    naive: np.ndarray  # (N, 28, 28) squashed
    polarity: np.ndarray  # (N, 28, 28) squashed, light ink on dark
    render_s: float
    prepare_ms: float  # to_mnist, per image


def prepared(sample: Sample) -> np.ndarray:
    """to_mnist, with an all-black image for the (counted as wrong) no-digit answers."""
    try:
        return to_mnist(sample.image)
    except NoDigitError:
        return np.zeros((28, 28), np.uint8)


def prepare(sources: list[str], n_per_source: int, seed: int) -> Prepared:
    """Render the set and prepare every image along the three paths, timing both."""
    start = time.perf_counter()
    samples = people_set(sources, n_per_source, seed)
    render_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = np.stack([prepared(s) for s in samples])
    prepare_ms = (time.perf_counter() - start) / len(samples) * 1000
    naive = np.stack([naive_28(s.image) for s in samples])
    dark = np.array([s.dark_ink for s in samples])
    polarity = np.where(dark[:, None, None], 255 - naive, naive).astype(np.uint8)
    return Prepared(
        labels=np.array([s.label for s in samples]), sources=np.array([s.source for s in samples]),
        ours=ours, naive=naive, polarity=polarity, render_s=render_s, prepare_ms=prepare_ms,
    )


def _counts(right: np.ndarray) -> dict:
    """n, wrong and accuracy of a boolean array of right answers."""
    n = int(right.size)
    return {"n": n, "wrong": int(n - right.sum()), "accuracy": float(right.mean()) if n else 0.0}


def evaluate(predictor: Predictor, data: Prepared) -> dict:
    """One model's figures: overall for each path; by source and by class with to_mnist."""
    def right(images: np.ndarray) -> np.ndarray:
        return predictor.probabilities(images).argmax(axis=1) == data.labels

    ours = right(data.ours)
    return {
        "to_mnist": _counts(ours),
        "naive": _counts(right(data.naive)),
        "polarity_fixed": _counts(right(data.polarity)),
        "by_source": {s: _counts(ours[data.sources == s]) for s in dict.fromkeys(data.sources)},
        "by_class": {str(c): _counts(ours[data.labels == c]) for c in range(10)},
    }


def _cell(counts: dict) -> str:
    return f"{counts['accuracy']:.2%} ({counts['wrong']})"


def print_run(run_dir: str, result: dict, data: Prepared, set_name: str) -> None:
    """The three overall figures for one run, as before the sources were added."""
    print(f"images: {len(data.labels)} {set_name}, model {run_dir}")
    print(f"with preprocessing (to_mnist):   {result['to_mnist']['accuracy']:.2%}"
          f"  ({data.prepare_ms:.1f} ms an image)")
    print(f"naive 28x28 resize:              {result['naive']['accuracy']:.2%}")
    print(f"naive resize, polarity fixed:    {result['polarity_fixed']['accuracy']:.2%}")


def print_tables(results: dict[str, dict]) -> None:
    """With to_mnist, every run side by side: by source, then by class; cells are
    accuracy (wrong)."""
    runs = list(results)
    header = "| {} | n | " + " | ".join(runs) + " |"
    rule = "|---|---|" + "---|" * len(runs)
    for title, key in (("source", "by_source"), ("class", "by_class")):
        print(f"\nwith preprocessing, by {title}: accuracy (wrong)\n")
        print(header.format(title))
        print(rule)
        first = results[runs[0]]
        for name, counts in first[key].items():
            cells = " | ".join(_cell(results[r][key][name]) for r in runs)
            print(f"| {name} | {counts['n']} | {cells} |")
        cells = " | ".join(f"**{_cell(results[r]['to_mnist'])}**" for r in runs)
        print(f"| all | {first['to_mnist']['n']} | {cells} |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="run_dir")
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help=f"comma-separated, from {','.join(SOURCES)} (default: all)")
    parser.add_argument("--n-per-source", "--n", dest="n_per_source", type=int,
                        default=DEFAULT_N_PER_SOURCE)
    parser.add_argument("--seed", type=int, default=None,
                        help=f"default {DEFAULT_SEED}; not with --kept-aside")
    parser.add_argument("--kept-aside", action="store_true",
                        help="the kept-aside set: for final figures only")
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    args.sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = sorted(set(args.sources) - set(SOURCES))
    if unknown or not args.sources:
        parser.error(f"--sources: unknown {unknown}; choose from {','.join(SOURCES)}")
    if args.kept_aside and args.seed is not None:
        parser.error("--kept-aside has its own seed; leave out --seed")
    args.seed = KEPT_ASIDE_SEED if args.kept_aside else (
        DEFAULT_SEED if args.seed is None else args.seed)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data = prepare(args.sources, args.n_per_source, args.seed)
    kind = "KEPT-ASIDE set, " if args.kept_aside else ""
    set_name = f"digits from {','.join(args.sources)} ({kind}seed {args.seed})"
    print(f"rendered {len(data.labels)} images in {data.render_s:.1f} s; to_mnist "
          f"{data.prepare_ms:.1f} ms an image\n")
    results = {}
    for i, run_dir in enumerate(args.run_dirs):
        name = run_dir if run_dir not in results else f"{run_dir} #{i + 1}"  # a repeated run
        results[name] = evaluate(Predictor.from_run(run_dir), data)
        print_run(name, results[name], data, set_name)
    print_tables(results)
    if args.json:
        args.json.write_text(json.dumps({
            "sources": args.sources, "n_per_source": args.n_per_source, "seed": args.seed,
            "kept_aside": args.kept_aside, "render_s": round(data.render_s, 2),
            "to_mnist_ms_per_image": round(data.prepare_ms, 2), "runs": results,
        }, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
