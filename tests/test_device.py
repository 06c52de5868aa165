"""How training uses memory: freed blocks are kept for the next step (device.keep_freed_memory)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Training steps of the lesson's network at the fast recipe's batch (fp32, so any CPU):
# the page faults taken per step once the first steps have set everything up. "fresh" pins
# glibc's starting thresholds (128 KiB), which glibc would otherwise raise by itself after the
# first large free, and only on some machines and allocation orders: the cost being removed,
# made the same everywhere.
PROBE = """
import ctypes, resource, sys, torch
import torch.nn.functional as F
from mnist_cnn.device import _M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD, keep_freed_memory
from mnist_cnn.model import build_model
if sys.argv[1] == "keep":
    kept = keep_freed_memory()
else:
    mallopt = ctypes.CDLL(None).mallopt
    kept = bool(mallopt(_M_MMAP_THRESHOLD, 128 * 1024) and mallopt(_M_TRIM_THRESHOLD, 128 * 1024))
torch.set_num_threads(1)
model = build_model("lesson", seed=0).to(memory_format=torch.channels_last)
x = torch.rand(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (128,))
def step():
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
for i in range(25):
    if i == 5:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 20)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_training_memory_is_reused_without_new_page_faults():
    """At glibc's starting thresholds a step maps fresh pages for its activations and gradients
    again (thousands of page faults a step); with the thresholds raised it reuses the heap."""
    pinned, fresh = _faults("fresh")
    kept, reused = _faults("keep")
    assert pinned == kept == "True"
    assert fresh > 1000, fresh  # the cost being removed
    assert reused < fresh / 20, (reused, fresh)


def test_keep_freed_memory_is_set_once_per_process():
    from mnist_cnn.device import keep_freed_memory

    assert keep_freed_memory() is keep_freed_memory()  # cached: mallopt is called once
