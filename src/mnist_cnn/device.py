"""Where tensors live: the device choice, bfloat16 support, data as tensors on a device, and
how the C allocator keeps freed memory during training."""

from __future__ import annotations

import ctypes
import functools
import platform

import numpy as np
import torch

from mnist_cnn.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when present, else the CPU; asking for a missing CUDA is a UsageError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in DEVICES:
        raise UsageError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit systems


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of handing it back to the kernel.

    A training step frees and allocates the same few-MB activations and gradients every
    step. By default glibc serves blocks above its mmap threshold with fresh pages and
    returns the top of its heap above a trim threshold, so every step paid page faults and
    the kernel's zeroing of those pages again: a third of a `fast` step on this project's
    2-core machine (17.2 -> 11.7 ms/step with both thresholds raised; docs/BENCHMARKS.md).
    glibc's own dynamic threshold avoids some of this on other machines, not on all.
    Raising them keeps the process at its peak memory, which is what training holds anyway,
    so only training calls this (evaluation measured no faster; the server never does).
    Process-wide and once; False where the C library is not glibc (nothing changes there)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def bf16_supported(device: torch.device) -> bool:
    """True where bfloat16 matmuls run natively (AVX512-BF16/AMX on CPU, Ampere+ GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether a run asking for `precision` computes in bfloat16 on `device`."""
    return precision == "bf16" and bf16_supported(device)


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    """bfloat16 autocast when `bf16`, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def images_to_tensor(images: np.ndarray, device: torch.device,
                     channels_last: bool = True) -> torch.Tensor:
    """Images -> float32 (N, 1, H, W) on `device`.

    uint8 pixels are divided by 255 (the lesson's scaling); floats are taken as already
    scaled. float32(k) / 255 in float32 equals float32(k / 255.0 in float64) for every k, so
    the lesson's `x / 255.0` arrays and our uint8 path give bit-identical tensors.
    Accepts (N, H, W) and (N, H, W, 1), as Keras users hold them.
    """
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype == np.uint8:
        x = torch.tensor(arr, dtype=torch.uint8, device=device).unsqueeze(1).float() / 255.0
    else:
        x = torch.tensor(arr, dtype=torch.float32, device=device).unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_tensors(images: np.ndarray, labels: np.ndarray, device: torch.device,
               channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1], kept whole on the device;
    integer labels -> int64."""
    x = images_to_tensor(images, device, channels_last)
    return x, torch.tensor(np.asarray(labels), dtype=torch.int64, device=device)
