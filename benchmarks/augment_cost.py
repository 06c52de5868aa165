"""The augmentation's share of a training step, measured side by side with a plain step.

    .venv/bin/python benchmarks/augment_cost.py [--batch 128] [--steps 40] [--rounds 5]
        [--threads N] [--elastic 2.0]

Alternates rounds of plain steps and augmented steps (the `fast` recipe's step: bf16 autocast,
channels-last, Adam) on random images, and times `random_distort` alone, so a busy machine
slows all three alike. Prints the median time per step of each and the augmentation's share.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from mnist_cnn.augment import Augment, random_distort
from mnist_cnn.device import bf16_supported
from mnist_cnn.model import build_model
from mnist_cnn.optimizers import OptimizerSpec


def _timed(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--elastic", type=float, default=0.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    aug = Augment(rotate=10, scale=0.1, shift=0.1, shear=10, elastic=args.elastic)
    bf16 = bf16_supported(torch.device("cpu"))
    model = build_model("lesson", seed=0).to(memory_format=torch.channels_last)
    spec = OptimizerSpec.named("adam", 1e-3)
    opt = spec.build(model.parameters())
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch * 8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (len(x),))
    t = [0]

    def step(augment: bool) -> None:
        idx = torch.randint(0, len(x), (args.batch,))
        xb = random_distort(x[idx], aug, gen) if augment else x[idx]
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), y[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t[0] += 1
        spec.step(opt, t[0])

    for _ in range(10):
        step(True)
    plain, augmented, alone = [], [], []
    for _ in range(args.rounds):
        plain.append(_timed(lambda: step(False), args.steps))
        augmented.append(_timed(lambda: step(True), args.steps))
        alone.append(_timed(lambda: random_distort(x[:args.batch], aug, gen), args.steps))
    p, a, d = (statistics.median(v) * 1e3 for v in (plain, augmented, alone))
    print(f"batch {args.batch}, {torch.get_num_threads()} threads, bf16 {bf16}, "
          f"elastic {args.elastic}, load {os.getloadavg()[0]:.1f}")
    print(f"plain step      {p:7.2f} ms")
    print(f"augmented step  {a:7.2f} ms  (+{(a - p) / p:.1%})")
    print(f"random_distort  {d:7.2f} ms  ({d / a:.1%} of an augmented step)")


if __name__ == "__main__":
    main()
