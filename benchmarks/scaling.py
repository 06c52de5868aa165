"""What data-parallel training costs here: the all-reduce of the lesson's gradients over
gloo, and a training step on 1 rank against 2 ranks, side by side in one run.

    .venv/bin/python benchmarks/scaling.py [--recipe lesson|fast] [--steps 200] [--json]

Three measurements (median of `--repeats` timings of `--steps` steps each, real MNIST
images, the real loop's body):
  allreduce   2 processes x 1 thread: gloo all-reduce of every gradient (93,322 float32)
  one         1 process, all the cores, the recipe's global batch
  ddp         2 processes x 1 thread under DistributedDataParallel, half the batch each
and the model of speed-up against ranks they give (see docs/SCALING.md).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from mnist_cnn.config import RECIPES
from mnist_cnn.device import autocast, bf16_supported, keep_freed_memory
from mnist_cnn.model import build_model
from mnist_cnn.optimizers import OptimizerSpec


def _load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from mnist_cnn import data
    from mnist_cnn.device import to_tensors

    (x, y), _ = data.load_data("mnist")
    return to_tensors(x[:n], y[:n], torch.device("cpu"), True)


def _steps(model, spec, opt, x, y, batch: int, steps: int, bf16: bool) -> float:
    """Seconds for `steps` steps of the loop's body, after 10 warm-up steps."""
    keep_freed_memory()  # as train.run_epochs does
    gen = torch.Generator().manual_seed(0)
    for i in range(steps + 10):
        if i == 10:
            start = time.perf_counter()
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        with autocast(x.device, bf16):
            logits = model(x[idx])
        loss = F.cross_entropy(logits.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        spec.step(opt, i + 1)
    return time.perf_counter() - start


def _rank(rank: int, port: int, args, out) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    recipe = RECIPES[args.recipe]
    model = build_model("lesson", seed=0).to(memory_format=torch.channels_last)
    grads = torch.zeros(sum(p.numel() for p in model.parameters()))
    times = []
    for _ in range(args.repeats):  # the all-reduce alone: every gradient, one bucket
        dist.barrier()
        start = time.perf_counter()
        for _ in range(args.steps):
            dist.all_reduce(grads)
        times.append((time.perf_counter() - start) / args.steps)
    x, y = _images(8192)
    ddp = torch.nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)
    spec = OptimizerSpec.named(recipe.optimizer, recipe.lr)
    opt = spec.build(model.parameters())
    bf16 = recipe.precision == "bf16" and bf16_supported(x.device)
    steps = []
    for _ in range(args.repeats):
        dist.barrier()
        steps.append(_steps(ddp, spec, opt, x, y, recipe.batch_size // 2, args.steps, bf16)
                     / args.steps)
    if rank == 0:
        out.put({"allreduce_ms": 1e3 * statistics.median(times),
                 "ddp_step_ms": 1e3 * statistics.median(steps),
                 "bytes": grads.numel() * 4})
    dist.destroy_process_group()


def one_process(args) -> float:
    """Median ms per step in this process with all its threads, the global batch."""
    recipe = RECIPES[args.recipe]
    model = build_model("lesson", seed=0).to(memory_format=torch.channels_last)
    spec = OptimizerSpec.named(recipe.optimizer, recipe.lr)
    opt = spec.build(model.parameters())
    x, y = _images(8192)
    bf16 = recipe.precision == "bf16" and bf16_supported(x.device)
    return 1e3 * statistics.median(
        _steps(model, spec, opt, x, y, recipe.batch_size, args.steps, bf16) / args.steps
        for _ in range(args.repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="lesson", choices=list(RECIPES))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    before = _load_avg()
    one_ms = one_process(args)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.start_processes(_rank, args=(port, args, out), nprocs=2, start_method="spawn")
    two = out.get()
    batch = RECIPES[args.recipe].batch_size
    result = {"recipe": args.recipe, "global_batch": batch, "threads": torch.get_num_threads(),
              "one_step_ms": one_ms, **two, "load_before": before, "load_after": _load_avg(),
              "speedup_2_ranks": one_ms / two["ddp_step_ms"]}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"recipe {args.recipe}, global batch {batch}, load {before} -> {result['load_after']}")
    print(f"  all-reduce of {two['bytes'] / 1e3:.0f} KB over gloo, 2 ranks: "
          f"{two['allreduce_ms']:.3f} ms")
    print(f"  1 process x {result['threads']} threads, batch {batch}: {one_ms:.2f} ms/step")
    print(f"  2 ranks x 1 thread, batch {batch // 2} each (DDP): {two['ddp_step_ms']:.2f} "
          f"ms/step = {result['speedup_2_ranks']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
