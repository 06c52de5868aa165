"""Data-parallel training across processes and machines, on PyTorch's own engine.

    mnist-cnn train --nproc 2                      # two processes on this machine
    torchrun --nproc-per-node 2 -m mnist_cnn train # the same, under the user's torchrun
    mnist-cnn train --nproc 2 --nnodes 2 --rdzv-endpoint HOST:29400   # on each machine

Each process (a rank) is an ordinary `mnist-cnn train` that finds torchrun's variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...) in its environment. It joins the process
group (gloo for CPU tensors, NCCL for CUDA ones), trains its shard of every batch under
DistributedDataParallel (gradients averaged by all-reduce), and rank 0 alone prints,
evaluates and writes the run. `launch` starts the ranks through torch's elastic agent,
in this process, and turns a failure into one line.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from mnist_cnn.errors import MnistCnnError, UsageError

# A collective that waits longer than this for a peer fails instead of hanging. The elastic
# agent notices a dead rank within a second; this bounds the wait where no agent watches.
TIMEOUT_ENV = "MNIST_CNN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0
LAUNCHED_ENV = "MNIST_CNN_LAUNCHED"  # set by `launch`: the launcher reports peer failures
PEER_LOST_EXIT = 3  # a rank that lost its peers exits with this (quietly, under `launch`)
_interrupted = False  # a worker received SIGINT (Ctrl-C, forwarded by the agent)


class DistributedError(MnistCnnError):
    """A rank lost contact with the others (one died, or the network failed)."""

    exit_code = PEER_LOST_EXIT


class PeerFailed(Exception):
    """Rank 0 failed and has said why; this rank stops without repeating it."""


@dataclass(frozen=True)
class World:
    """This process's place: rank `rank` of `size`, `local_rank` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that prints, evaluates and writes the run."""
        return self.rank == 0


def env_world() -> World:
    """The world torchrun's variables describe (a single process when they are absent)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UsageError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None


def world() -> World:
    """This process's world: the initialised process group's, else a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), env_world().local_rank)
    return World()


def timeout_seconds() -> float:
    """How long a collective may wait for a peer ($MNIST_CNN_DIST_TIMEOUT, default 120)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise UsageError(f"${TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if not 1 <= value <= 86_400:
        raise UsageError(f"${TIMEOUT_ENV} must be between 1 and 86400 seconds")
    return value


def init() -> World:
    """Join the process group torchrun's variables describe (nothing for one process).

    gloo carries CPU tensors and NCCL CUDA ones, so one group serves either device.
    SIGINT (the agent forwards Ctrl-C) is remembered, so that a peer's disappearance seen
    while stopping counts as the interrupt it is."""
    import torch.distributed as dist

    here = env_world()
    if here.size <= 1 or dist.is_initialized():
        return world()
    if not dist.is_available():
        raise UsageError("this torch has no torch.distributed; train in one process")
    backend = "gloo"
    if torch.cuda.is_available() and dist.is_nccl_available():
        backend = "cpu:gloo,cuda:nccl"
        torch.cuda.set_device(here.local_rank)
    signal.signal(signal.SIGINT, _on_sigint)
    with guard():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_seconds()))
    return world()


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def finish() -> None:
    """Leave the process group (if any)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """A rank's own GPU (cuda:LOCAL_RANK) under DDP; the CPU is shared."""
    if device.type == "cuda" and world().size > 1:
        return torch.device("cuda", env_world().local_rank)
    return device


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model under DistributedDataParallel: rank 0's weights are broadcast, gradients
    are averaged by all-reduce, and buffers (BatchNormalization's moving statistics) are
    rank 0's, broadcast before each forward. Batch statistics stay per rank, as in plain
    DDP. Ranks other than 0 draw their own Dropout masks: their RNG is forked from the
    shared one, so a resumed run draws the same masks again."""
    from torch.nn.parallel import DistributedDataParallel

    here = world()
    if here.rank > 0:
        torch.manual_seed(int(torch.randint(2**62, (1,)).item()) + here.rank)
    device = next(model.parameters()).device
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        gradient_as_bucket_view=True)


@contextmanager
def guard() -> Iterator[None]:
    """Turn a failed collective (a peer died, a timeout) into one DistributedError line."""
    import torch.distributed as dist

    if env_world().size <= 1:  # one process: nothing to lose contact with
        yield
        return
    try:
        yield
    except (dist.DistError, RuntimeError) as exc:
        text = str(exc)
        if not isinstance(exc, dist.DistError) and not any(
                word in text.lower() for word in ("gloo", "nccl", "connection", "timed out",
                                                  "socket", "store")):
            raise
        if _interrupted:
            raise KeyboardInterrupt from None
        first = (text.strip().splitlines() or [type(exc).__name__])[0][:160]
        raise DistributedError(f"rank {world().rank} lost contact with the other ranks "
                               f"(one stopped, died or timed out): {first}") from None


def check_batch(batch_size: int, size: int) -> int:
    """Each rank's share of a global batch; the batch must divide evenly."""
    if batch_size % size:
        raise UsageError(f"the batch of {batch_size} does not split evenly over {size} "
                         f"ranks; use a batch size divisible by {size}")
    return batch_size // size


def shard(idx: torch.Tensor, rank: int, size: int) -> tuple[torch.Tensor, float]:
    """Rank `rank`'s part of a global batch `idx`, and the factor that makes the average of
    the ranks' gradients the gradient of the whole batch's mean loss.

    Full batches split evenly (factor 1); a short last batch splits as evenly as it can
    (`tensor_split`), each part's mean loss weighted by its share of the batch. A last batch
    with fewer images than ranks is taken whole by every rank: the same gradient on each,
    which averages to itself (its few images then count once a rank in the epoch's mean)."""
    if len(idx) < size:
        return idx, 1.0
    part = torch.tensor_split(idx, size)[rank]
    return part, len(part) * size / len(idx)


def all_sum(*values: torch.Tensor | int | float) -> list[float]:
    """Sum numbers over every rank (the epoch's loss sum, correct count, images seen)."""
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    with guard():
        dist.all_reduce(t)
    return t.tolist()


def share_bytes(payload: bytes | None) -> bytes:
    """Rank 0's bytes on every rank (None on rank 0 means it failed: the others stop)."""
    import torch.distributed as dist

    size = torch.tensor([-1 if payload is None else len(payload)], dtype=torch.int64)
    with guard():
        dist.broadcast(size, 0)
        if size.item() < 0:
            raise PeerFailed
        if size.item() == 0:
            return b""
        data = torch.frombuffer(bytearray(payload), dtype=torch.uint8) if payload is not None \
            else torch.empty(int(size.item()), dtype=torch.uint8)
        dist.broadcast(data, 0)
    return data.numpy().tobytes()


@contextmanager
def state_for_peers() -> Iterator[Callable[[Any], None]]:
    """On rank 0: a function that sends the run's resumable state (None for a new run) to
    the other ranks, which wait for it in `state_from_rank0`. If the block fails before it
    is sent, the others are told to stop. A no-op with one process."""
    sent = False

    def send(state: Any) -> None:
        nonlocal sent
        sent = True
        if world().size > 1:
            buf = io.BytesIO()
            if state is not None:
                torch.save(state.to_dict(), buf)
            share_bytes(buf.getvalue())

    try:
        yield send
    except BaseException:
        if not sent and world().size > 1:
            share_bytes(None)
        raise


def state_from_rank0() -> Any:
    """On the other ranks: rank 0's resumable state, or None for a new run (raises
    PeerFailed if rank 0 failed first). Travels as torch.save data, loaded weights-only."""
    from mnist_cnn.checkpoint import TrainState

    data = share_bytes(None)  # the others pass no payload: they receive rank 0's
    return TrainState.from_dict(torch.load(io.BytesIO(data), weights_only=True)) if data \
        else None


def quiet_peer_errors() -> bool:
    """Under `launch`, a rank that lost its peers exits quietly: the launcher names the
    rank that failed first, in one line."""
    return os.environ.get(LAUNCHED_ENV) == "1"


@dataclass(frozen=True)
class Launch:
    """Where the ranks run: `nproc` on this machine, `nnodes` machines meeting at
    `endpoint` (HOST:PORT of one of them) under the run id `run_id`."""

    nproc: int = 1
    nnodes: int = 1
    endpoint: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.nproc, int) and 1 <= self.nproc <= 1024):
            raise UsageError("--nproc must be an integer in 1..1024")
        if not (isinstance(self.nnodes, int) and 1 <= self.nnodes <= 1024):
            raise UsageError("--nnodes must be an integer in 1..1024")
        if self.nnodes > 1 and not self.endpoint:
            raise UsageError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT (a machine "
                             "every node can reach; the same on each)")
        if self.endpoint is not None and (":" not in self.endpoint
                                          or not self.endpoint.rsplit(":", 1)[1].isdigit()):
            raise UsageError(f"--rdzv-endpoint must be HOST:PORT, got {self.endpoint!r}")
        if env_world().size > 1 or "TORCHELASTIC_RUN_ID" in os.environ:
            raise UsageError("already running under torchrun: set the processes with "
                             "torchrun's own --nproc-per-node, not --nproc")


def launch(how: Launch, argv: list[str]) -> int:
    """Run `python -m mnist_cnn <argv>` as `how.nproc` ranks here (of `how.nnodes`
    machines) under torch's elastic agent; return the exit code, and a one-line reason
    when a rank failed without saying why itself."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    _silence_agent()
    # Each rank gets its share of the cores (torchrun does the same); the launcher waits.
    threads = max(1, (os.cpu_count() or 1) // how.nproc)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ[LAUNCHED_ENV] = "1"
    config = LaunchConfig(
        min_nodes=how.nnodes, max_nodes=how.nnodes, nproc_per_node=how.nproc,
        run_id=how.run_id or (uuid.uuid4().hex if how.nnodes == 1 else "mnist-cnn"),
        rdzv_backend="c10d", rdzv_endpoint=how.endpoint or "127.0.0.1:0",
        rdzv_configs={"join_timeout": timeout_seconds()}, max_restarts=0,
        monitor_interval=0.1)
    try:
        elastic_launch(config, sys.executable)("-m", "mnist_cnn", *argv)
    except SignalException as exc:
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        return _report_failure(exc)
    except (RuntimeError, ValueError) as exc:  # rendezvous: endpoint unreachable, timeout
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DistributedError(f"the ranks could not meet at {config.rdzv_endpoint}: "
                               f"{first}") from None
    return 0


def _report_failure(exc) -> int:
    """The first rank to fail decides the exit code. One that died by a signal, or lost
    its peers, has said nothing: name it in one line. Otherwise it printed its own error."""
    failures = sorted(exc.failures.items(), key=lambda kv: kv[1].timestamp)
    deaths = [(r, f) for r, f in failures if f.exitcode < 0]
    if not deaths:
        codes = [f.exitcode for _, f in failures if f.exitcode != PEER_LOST_EXIT]
        if codes:
            return codes[0]
    rank, failure = (deaths or failures)[0]
    reason = (f"was killed by {failure.signal_name()}" if failure.exitcode < 0
              else "lost contact with the others")
    raise DistributedError(f"rank {rank} (pid {failure.pid}) {reason}; every rank was "
                           "stopped")


def _silence_agent() -> None:
    """The elastic agent logs each step of its work; the launcher reports in one line."""
    import logging

    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("LOGLEVEL", "CRITICAL")  # loggers the agent creates later
