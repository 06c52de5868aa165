"""Is there a faster 2x2 max-pool than aten's on this CPU? Two rewrites against F.max_pool2d.

    .venv/bin/python benchmarks/pool_variants.py [--steps 100]

For the lesson's two pooled shapes at the `fast` recipe's batch in bf16 and the lesson's in
fp32 (channels-last, as training runs them): the forward time and the forward + backward
time of aten's max-pool, of a reduction (`amax` over the window dimensions of a reshaped
view) and of the maximum of the window's four strided views; the best of three alternating
rounds each, and whether the outputs are equal. docs/BENCHMARKS.md, "Tried or not".
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def amax_pool(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2] // 2, x.shape[3] // 2
    v = x[:, :, :2 * h, :2 * w].permute(0, 2, 3, 1)  # (B, H, W, C): C is contiguous
    return v.unflatten(1, (h, 2)).unflatten(3, (w, 2)).amax(dim=(2, 4)).permute(0, 3, 1, 2)


def four_views_pool(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2] // 2, x.shape[3] // 2
    a, b = x[:, :, 0:2 * h:2, 0:2 * w:2], x[:, :, 0:2 * h:2, 1:2 * w:2]
    c, d = x[:, :, 1:2 * h:2, 0:2 * w:2], x[:, :, 1:2 * h:2, 1:2 * w:2]
    return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))


VARIANTS = {"aten": lambda x: F.max_pool2d(x, 2), "amax": amax_pool, "four views": four_views_pool}


def timed(f, x: torch.Tensor, grad: torch.Tensor, steps: int) -> tuple[float, float]:
    start = time.perf_counter()
    for _ in range(steps):
        f(x)
    forward = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for _ in range(steps):
        x.grad = None
        f(x).backward(grad)
    return forward * 1e3, (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    for shape, dtype in [((128, 32, 26, 26), torch.bfloat16), ((128, 64, 11, 11), torch.bfloat16),
                         ((32, 32, 26, 26), torch.float32), ((32, 64, 11, 11), torch.float32)]:
        x = torch.relu(torch.randn(shape)).to(dtype).contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        grad = torch.randn_like(F.max_pool2d(x, 2))
        best: dict[str, tuple[float, float]] = {}
        for _ in range(3):
            for name, f in VARIANTS.items():
                f(x).backward(grad)  # warm up
                t = timed(f, x, grad, args.steps)
                best[name] = min(best.get(name, t), t)
        same = all(torch.equal(f(x), F.max_pool2d(x, 2)) for f in VARIANTS.values())
        cells = ", ".join(f"{n} {fw:.3f} / {fb:.3f}" for n, (fw, fb) in best.items())
        print(f"{tuple(shape)} {str(dtype)[6:]}: ms forward / forward+backward: {cells}; "
              f"equal outputs: {same}")


if __name__ == "__main__":
    main()
