"""Would an average of the weights help `accurate`? Scored on a validation split only.

    MNIST_CNN_DATA=../shared/data .venv/bin/python benchmarks/accurate_ema.py \\
        [--seeds 0,1,2] [--epochs 12] [--decays 0.99,0.998,0.999,0.9995]

Trains the `accurate` recipe with the product's own loop (`train.fit`) on the first 50,000
training images and, alongside it, keeps exponential moving averages of the weights (one per
decay, updated after every optimiser step). Prints, per seed, the validation accuracy on the
last 10,000 training images of the final weights and of each average (one JSON line each).
The product does not average weights: this is the measurement behind that choice
(docs/BENCHMARKS.md, "The accurate recipe").
"""

from __future__ import annotations

import argparse
import copy
import json

import torch
from accurate_search import VALIDATION  # the split the recipe was chosen on

from mnist_cnn import data
from mnist_cnn.config import TrainConfig
from mnist_cnn.device import to_tensors
from mnist_cnn.evaluate import evaluate_tensors
from mnist_cnn.optimizers import OptimizerSpec
from mnist_cnn.train import fit, split_validation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--decays", default="0.99,0.998,0.999,0.9995")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    decays = [float(d) for d in args.decays.split(",")]
    averages: dict[float, list[torch.Tensor]] = {}
    plain_step = OptimizerSpec.step

    def step_and_average(spec: OptimizerSpec, optimizer, n: int) -> None:
        plain_step(spec, optimizer, n)
        weights = [p.detach() for group in optimizer.param_groups for p in group["params"]]
        with torch.no_grad():
            for decay in decays:
                if decay in averages:
                    torch._foreach_lerp_(averages[decay], weights, 1 - decay)
                else:
                    averages[decay] = [w.clone() for w in weights]

    OptimizerSpec.step = step_and_average  # the loop calls spec.step after every batch
    torch.set_num_threads(args.threads)
    (x, y), _ = data.load_data()
    train, val = split_validation(x, y, VALIDATION)
    vx, vy = to_tensors(*val, torch.device("cpu"), channels_last=True)
    for seed in map(int, args.seeds.split(",")):
        averages.clear()
        result = fit(TrainConfig(recipe="accurate", seed=seed, epochs=args.epochs,
                                 device="cpu"), train)
        bf16 = result.precision == "bf16"  # score as the run computed
        row = {"seed": seed, "epochs": args.epochs,
               "final": evaluate_tensors(result.model, vx, vy, bf16=bf16).accuracy}
        for decay, weights in averages.items():
            model = copy.deepcopy(result.model)
            with torch.no_grad():
                for p, w in zip(model.parameters(), weights, strict=True):
                    p.copy_(w)
            row[f"ema {decay}"] = evaluate_tensors(model, vx, vy, bf16=bf16).accuracy
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
