"""Does torch.compile pay for a training step here? Eager against compiled, side by side.

    .venv/bin/python benchmarks/compile_step.py [--recipe fast|lesson] [--steps 100]

Compiles the model's forward and backward (inductor, the default backend; it needs a C++
compiler) at the recipe's batch and precision, then times `--steps` steps of each, in one
process, alternating, with the compile time reported apart. The optimizer step stays the
Keras-exact eager one in both. A whole `fast` run is one epoch (469 steps): compiling
pays only if (eager - compiled) x 469 exceeds the compile time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from mnist_cnn.config import RECIPES
from mnist_cnn.device import autocast, bf16_supported
from mnist_cnn.model import build_model
from mnist_cnn.optimizers import OptimizerSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast", choices=list(RECIPES))
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    recipe = RECIPES[args.recipe]
    cpu = torch.device("cpu")
    bf16 = recipe.precision == "bf16" and bf16_supported(cpu)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4096, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (4096,), generator=gen)
    eager = build_model("lesson", seed=0).to(memory_format=torch.channels_last)
    compiled_model = build_model("lesson", seed=0).to(memory_format=torch.channels_last)
    compiled = torch.compile(compiled_model)

    def run(model, params, steps: int) -> float:
        spec = OptimizerSpec.named(recipe.optimizer, recipe.lr)
        opt = spec.build(params)
        start = time.perf_counter()
        for i in range(steps):
            idx = torch.randint(0, len(x), (recipe.batch_size,), generator=gen)
            with autocast(cpu, bf16):
                logits = model(x[idx])
            loss = F.cross_entropy(logits.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            spec.step(opt, i + 1)
        return (time.perf_counter() - start) / steps

    start = time.perf_counter()
    run(compiled, compiled_model.parameters(), 2)  # compiles forward and backward
    compile_s = time.perf_counter() - start
    run(eager, eager.parameters(), 5)
    eager_ms, compiled_ms = [], []
    for _ in range(3):
        eager_ms.append(1e3 * run(eager, eager.parameters(), args.steps))
        compiled_ms.append(1e3 * run(compiled, compiled_model.parameters(), args.steps))
    e, c = statistics.median(eager_ms), statistics.median(compiled_ms)
    print(f"recipe {recipe.name}, batch {recipe.batch_size}, {'bf16' if bf16 else 'fp32'}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}")
    print(f"  compile (first 2 steps): {compile_s:.1f} s")
    print(f"  eager {e:.2f} ms/step, compiled {c:.2f} ms/step ({e / c:.2f}x)")
    saved = (e - c) * 469 / 1e3
    print(f"  over one fast epoch (469 steps): {saved:+.1f} s saved against {compile_s:.1f} s "
          "of compiling")


if __name__ == "__main__":
    main()
