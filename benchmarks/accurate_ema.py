"""Would an average of the weights help `accurate`? Scored on a validation split only.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/accurate_ema.py \\
        [--arch examples/accuracy/deep-bn.json] [--seeds 0,1,2] [--epochs 12] \\
        [--decays 0.99,0.998,0.999,0.9995] [--swa 2,3,4] [--threads 2]

Trains the `accurate` recipe with the product's own loop (`train.fit`) on the first 50,000
training images and, alongside it, keeps

- exponential moving averages of the weights, one per decay, updated after every optimiser
  step ("ema D"); a network with BatchNormalization has its moving statistics averaged the
  same way, as the weights they belong to (with `--swa`, also "ema D+bn": the
  statistics measured afresh instead, as below);
- with `--swa K,...`, the mean of the weights at the ends of the last K epochs ("swa K",
  stochastic weight averaging over the annealed end of the one-cycle schedule), whose
  BatchNormalization statistics are then measured afresh on the 50,000 training images (an
  average of weights has no statistics of its own); "final+bn" is the final weights with
  their statistics measured the same way, the control that separates the two effects.

Prints, per seed, the validation accuracy on the last 10,000 training images of the final
weights and of each average (one JSON line each; --log appends them to a file). The same
run gives every figure of a line, so a line's differences are the averaging's alone, not
another draw of the seed. The product does not average weights: this is the measurement
behind that choice (docs/BENCHMARKS.md, "The accurate recipe" and "Averaged weights for
deep-bn").
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
from accurate_search import VALIDATION  # the split the recipe was chosen on

from mnist_cnn import data
from mnist_cnn.config import TrainConfig
from mnist_cnn.device import autocast, to_tensors
from mnist_cnn.evaluate import evaluate_tensors
from mnist_cnn.model import resolve_architecture
from mnist_cnn.modules import BatchNorm
from mnist_cnn.optimizers import OptimizerSpec
from mnist_cnn.train import Training, fit, split_validation


def _floats(state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The weights and BatchNormalization statistics of a state dict (a model's own
    `state_dict()` holds them as live tensors)."""
    return [t for t in state.values() if t.is_floating_point()]


def _with(model: torch.nn.Module, values: list[torch.Tensor]) -> torch.nn.Module:
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for t, v in zip(_floats(copied.state_dict()), values, strict=True):
            t.copy_(v)
    return copied


@torch.no_grad()
def _measure_bn(model: torch.nn.Module, x: torch.Tensor, bf16: bool,
                batch: int = 500) -> torch.nn.Module:
    """`model` with every BatchNormalization's moving statistics replaced by their mean over
    `x`'s batches (Dropout off, as at inference)."""
    norms = [m for m in model.modules() if isinstance(m, BatchNorm)]
    if not norms:
        return model
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.train()
    with autocast(x.device, bf16):
        for k, i in enumerate(range(0, len(x), batch), start=1):
            for m in norms:  # a running mean: batch k weighs 1/k
                m.momentum = (k - 1) / k
            model(x[i:i + batch])
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="lesson")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--decays", default="0.99,0.998,0.999,0.9995")
    parser.add_argument("--swa", default="", help="epochs to average at the end, e.g. 2,3,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log", help="also append each line to this JSON-lines file")
    args = parser.parse_args()
    decays = [float(d) for d in args.decays.split(",") if d]
    swa = [int(k) for k in args.swa.split(",") if k]
    averages: dict[float, list[torch.Tensor]] = {}
    live: list[torch.Tensor] = []  # the trained model's weights and statistics, live
    plain_step, plain_start = OptimizerSpec.step, Training.start.__func__

    def start_and_remember(cls, model, *rest):
        live[:] = _floats(model.state_dict())  # updated in place by every step
        return plain_start(cls, model, *rest)

    def step_and_average(spec: OptimizerSpec, optimizer, n: int) -> None:
        plain_step(spec, optimizer, n)
        with torch.no_grad():
            for decay in decays:
                if decay in averages:
                    torch._foreach_lerp_(averages[decay], live, 1 - decay)
                else:
                    averages[decay] = [v.clone() for v in live]

    Training.start = classmethod(start_and_remember)
    OptimizerSpec.step = step_and_average  # the loop calls spec.step after every batch
    torch.set_num_threads(args.threads)
    arch = resolve_architecture(args.arch)
    (x, y), _ = data.load_data()
    train, val = split_validation(x, y, VALIDATION)
    tx, _ = to_tensors(*train, torch.device("cpu"), channels_last=True)
    vx, vy = to_tensors(*val, torch.device("cpu"), channels_last=True)
    for seed in map(int, args.seeds.split(",")):
        averages.clear()
        ends: list[list[torch.Tensor]] = []  # the weights at each epoch's end

        def keep(state, ends=ends) -> None:
            ends.append([v.detach().clone() for v in _floats(state.model)])

        began = time.perf_counter()
        result = fit(TrainConfig(arch=arch, recipe="accurate", seed=seed, epochs=args.epochs,
                                 device="cpu"), train, on_epoch=keep if swa else None)
        bf16 = result.precision == "bf16"  # score as the run computed
        model = result.model
        row = {"arch": arch.name, "seed": seed, "epochs": args.epochs,
               "train_seconds": round(result.train_seconds, 1),
               "final": evaluate_tensors(model, vx, vy, bf16=bf16).accuracy}
        for decay, values in averages.items():
            row[f"ema {decay}"] = evaluate_tensors(_with(model, values), vx, vy,
                                                   bf16=bf16).accuracy
            if swa:  # the same average with statistics measured afresh
                row[f"ema {decay}+bn"] = evaluate_tensors(
                    _measure_bn(_with(model, values), tx, bf16), vx, vy, bf16=bf16).accuracy
        if swa:
            fresh = _measure_bn(copy.deepcopy(model), tx, bf16)
            row["final+bn"] = evaluate_tensors(fresh, vx, vy, bf16=bf16).accuracy
        for k in swa:
            mean = [torch.stack(parts).mean(0) for parts in zip(*ends[-k:], strict=True)]
            averaged = _measure_bn(_with(model, mean), tx, bf16)
            row[f"swa {k}"] = evaluate_tensors(averaged, vx, vy, bf16=bf16).accuracy
        row["seconds"] = round(time.perf_counter() - began, 1)
        print(json.dumps(row), flush=True)
        if args.log:
            with open(args.log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
