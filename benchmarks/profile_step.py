"""Where a training step's time goes: torch.profiler over steps of the real loop's body.

    .venv/bin/python benchmarks/profile_step.py [--recipe lesson|fast] [--steps 50] \
        [--by-shape] [--glibc-default]

Prints the operators that take the most CPU time (self time, so nothing is counted twice)
and the split between forward, backward and the optimizer step, plus the FLOP-based
estimate of how far the step is from this CPU's peak.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function

from mnist_cnn.config import RECIPES
from mnist_cnn.device import bf16_supported, keep_freed_memory
from mnist_cnn.model import build_model
from mnist_cnn.optimizers import OptimizerSpec

TRAIN_FLOP_PER_IMAGE = 17.0e6  # forward ~5.6 MFLOP (conv2d_1 alone 4.5); backward ~2x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="lesson", choices=list(RECIPES))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--by-shape", action="store_true",
                        help="one row per operator and input shapes (which layer costs what)")
    parser.add_argument("--glibc-default", action="store_true",
                        help="leave glibc's trim and mmap thresholds alone (the loop raises them)")
    args = parser.parse_args()
    recipe = RECIPES[args.recipe]
    if not args.glibc_default:
        keep_freed_memory()  # as train.run_epochs does
    bf16 = recipe.precision == "bf16" and bf16_supported(torch.device("cpu"))
    model = build_model("lesson", seed=0).to(memory_format=torch.channels_last)
    spec = OptimizerSpec.named(recipe.optimizer, recipe.lr)
    opt = spec.build(model.parameters())
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((recipe.batch_size * 8, 1, 28, 28), np.float32))
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(rng.integers(0, 10, len(x)))

    def step(t: int) -> None:
        idx = torch.randint(0, len(x), (recipe.batch_size,))
        with record_function("forward"), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            logits = model(x[idx])
        loss = F.cross_entropy(logits.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            spec.step(opt, t)

    for t in range(1, 11):
        step(t)
    start = time.perf_counter()
    for t in range(11, 11 + args.steps):
        step(t)
    per_step = (time.perf_counter() - start) / args.steps
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.by_shape) as prof:
        for t in range(100, 100 + args.steps):
            step(t)
    table = prof.key_averages(group_by_input_shape=args.by_shape)
    print(table.table(sort_by="self_cpu_time_total", row_limit=25 if args.by_shape else 18,
                      max_name_column_width=40, max_shapes_column_width=70))
    rate = recipe.batch_size * TRAIN_FLOP_PER_IMAGE / per_step
    print(f"recipe {recipe.name}: batch {recipe.batch_size}, {'bf16' if bf16 else 'fp32'}, "
          f"{torch.get_num_threads()} threads: {per_step * 1e3:.2f} ms/step, "
          f"{recipe.batch_size / per_step:,.0f} images/s, {rate / 1e9:.0f} GFLOP/s achieved")


if __name__ == "__main__":
    main()
