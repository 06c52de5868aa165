"""The training loop. Recipes (config.py) are settings of this one loop, not separate engines;
the command line and the Keras-style API both drive it.

Training time is the loop's own wall time: no data loading, no evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from mnist_cnn import distributed
from mnist_cnn.augment import Augment, augment_generator, random_distort
from mnist_cnn.checkpoint import TrainState
from mnist_cnn.config import Recipe, TrainConfig, planned_steps
from mnist_cnn.device import autocast, keep_freed_memory, resolve_device, to_tensors, use_bf16
from mnist_cnn.errors import ModelFileError, TrainingError, UsageError
from mnist_cnn.evaluate import evaluate_tensors
from mnist_cnn.model import Net, build_model
from mnist_cnn.optimizers import KerasOptimizer, LambdaSchedule, OptimizerSpec


class Reporter(Protocol):
    """Receives progress; the CLI's Keras-style progress bar is one."""

    def epoch_begin(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, step: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> None: ...
    def epoch_end(self, logs: dict[str, float], seconds: float, steps: int) -> None: ...


@dataclass
class EpochProgress:
    """An epoch between two steps: enough to finish it exactly as if it had never stopped."""

    order_rng: torch.Tensor  # the shuffle generator's state before this epoch's order
    step: int = 0  # steps done in this epoch
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # the sums the
    correct: torch.Tensor = field(  # epoch's logs are computed from
        default_factory=lambda: torch.zeros((), dtype=torch.int64))
    seen: int = 0  # images seen in this epoch

    def to_dict(self) -> dict[str, Any]:
        return {"order_rng": self.order_rng, "step": self.step, "seen": self.seen,
                "loss_sum": self.loss_sum.detach().cpu().clone(),
                "correct": self.correct.detach().cpu().clone()}


@dataclass
class Training:
    """The loop's moving parts. The API keeps one between fit() calls, as Keras keeps its
    optimiser; a checkpoint (TrainState) is a snapshot of one."""

    model: Net
    spec: OptimizerSpec
    optimizer: KerasOptimizer
    scheduler: LambdaSchedule
    shuffle: torch.Generator  # the epochs' order; its state is saved, so resume is exact
    steps: int = 0  # optimiser steps so far (Adam's bias correction counts them)
    train_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    progress: EpochProgress | None = None  # the epoch under way (None between epochs)
    ddp: torch.nn.Module | None = None  # the model's DistributedDataParallel wrapper, if any
    distort: torch.Generator | None = None  # the augmentation's draws, saved like shuffle's

    @property
    def forward(self) -> torch.nn.Module:
        """What a step calls: the DDP wrapper (it all-reduces the gradients) or the model."""
        return self.ddp if self.ddp is not None else self.model

    @classmethod
    def start(cls, model: Net, spec: OptimizerSpec, schedule: Callable[[int], float],
              seed: int) -> Training:
        optimizer = spec.build(model.parameters())
        return cls(model, spec, optimizer, LambdaSchedule(optimizer, schedule),
                   torch.Generator().manual_seed(seed))

    def snapshot(self, epoch: int, config: TrainConfig) -> TrainState:
        """A resumable checkpoint after `epoch` completed epochs (and the next one's
        progress, when taken inside an epoch)."""
        return TrainState(epoch=epoch, model=self.model.state_dict(),
                          optimizer=self.optimizer.state_dict(),
                          scheduler=self.scheduler.state_dict(),
                          shuffle_rng=self.shuffle.get_state(), torch_rng=torch.get_rng_state(),
                          history=list(self.history), train_seconds=self.train_seconds,
                          steps=self.steps, config=config,
                          progress=self.progress.to_dict() if self.progress else None,
                          augment_rng=None if self.distort is None else self.distort.get_state())

    def restore(self, state: TrainState) -> None:
        try:  # load_state checked the structure; the details can still disagree
            self.model.load_state_dict(state.model)
            self.optimizer.load_state_dict(state.optimizer)
            self.scheduler.load_state_dict(state.scheduler)
            self.shuffle.set_state(state.shuffle_rng)
            if state.torch_rng is not None:  # Dropout's masks come from torch's own RNG
                torch.set_rng_state(state.torch_rng)
            if self.distort is not None:
                self.distort.set_state(state.augment_rng)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"the checkpoint does not fit this run ({exc})") from None
        self.history, self.steps = list(state.history), state.steps
        self.train_seconds = state.train_seconds
        device = next(self.model.parameters()).device
        self.progress = None if state.progress is None else EpochProgress(
            **{**state.progress, "loss_sum": state.progress["loss_sum"].to(device),
               "correct": state.progress["correct"].to(device)})


@dataclass(frozen=True)
class Plan:
    """How far and how: the settings of one call of `run_epochs`."""

    epochs: int
    batch_size: int
    bf16: bool = False
    label_smoothing: float = 0.0
    total_steps: int | None = None  # stop when the run has taken this many steps
    shuffle: bool = True
    first_epoch: int = 0  # epochs already done (a resumed run)
    checkpoint_steps: int | None = None  # also checkpoint inside an epoch, every N steps
    checkpoint_seconds: float | None = None  # ... or every N seconds of training
    rank: int = 0  # under DDP: this process's part of every batch ...
    world: int = 1  # ... of this many (the batch is the global batch, split over the ranks)
    augment: Augment | None = None  # distort each batch, drawing from Training.distort

    @property
    def augment_steps(self) -> int | None:
        """How many of the run's first steps are distorted (None: every one)."""
        if self.augment is None or self.total_steps is None:
            return None
        return round(self.augment.until * self.total_steps)


@dataclass
class TrainResult:
    model: Net
    history: list[dict[str, float]]
    train_seconds: float
    steps: int
    device: str
    precision: str
    hyperparameters: dict[str, Any]


def schedule(recipe: Recipe, total_steps: int) -> Callable[[int], float]:
    """The learning-rate multiplier at each step: 1 (constant), or one-cycle."""
    if recipe.schedule == "constant":
        return lambda step: 1.0
    warm = max(1, int(recipe.warmup * total_steps))

    def onecycle(step: int) -> float:  # linear warm-up, then cosine down to 1% of the peak
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total_steps - warm)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return onecycle


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float):
    """Keras' validation_split: the last `fraction` of the data, taken before shuffling."""
    if not 0.0 <= fraction < 1.0:
        raise UsageError("--validation-split must be in [0, 1)")
    n_val = int(len(x) * fraction)
    if n_val == 0:
        return (x, y), None
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _due(plan: Plan, step: int, since: float) -> bool:
    """Whether a checkpoint inside the epoch is due after `step` steps of it."""
    return bool((plan.checkpoint_steps and step % plan.checkpoint_steps == 0) or (
        plan.checkpoint_seconds and time.perf_counter() - since >= plan.checkpoint_seconds))


def train_epoch(t: Training, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor,
                plan: Plan, steps: int, reporter: Reporter | None = None,
                on_checkpoint: Callable[[], None] | None = None) -> dict[str, float]:
    """Optimiser steps `t.progress.step + 1 .. steps` over `x[order]` in batches (a resumed
    epoch goes on where it stopped); returns the epoch's mean loss and accuracy and adds
    the time to `t.train_seconds`. `y` holds class indices (N,) or one-hot / soft targets
    (N, classes). `on_checkpoint()` is called when `plan` says one is due inside the epoch.

    Under DDP (`plan.world` > 1) each rank takes its part of every batch, and the gradient
    of the loss it back-propagates, averaged over the ranks by DDP, is the whole batch's.
    """
    model, device, weight = t.forward, x.device, 1.0
    model.train()
    if t.progress is None:
        t.progress = EpochProgress(t.shuffle.get_state())
    p = t.progress
    p.loss_sum, p.correct = p.loss_sum.to(device), p.correct.to(device)
    start = saved = time.perf_counter()
    for i in range(p.step, steps):
        idx = order[i * plan.batch_size:(i + 1) * plan.batch_size]
        if plan.world > 1:
            idx, weight = distributed.shard(idx, plan.rank, plan.world)
        xb, yb = x[idx], y[idx]
        if plan.augment is not None and t.distort is not None and (
                plan.augment_steps is None or t.steps < plan.augment_steps):
            xb = random_distort(xb, plan.augment, t.distort)
        with autocast(device, plan.bf16):
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=plan.label_smoothing)
        t.optimizer.zero_grad(set_to_none=True)
        (loss if weight == 1.0 else loss * weight).backward()
        t.spec.step(t.optimizer, t.steps + 1)
        t.scheduler.step()
        t.steps += 1
        labels = yb if yb.dim() == 1 else yb.argmax(1)
        p.loss_sum += loss.detach() * len(yb)
        p.correct += (logits.argmax(1) == labels).sum()
        p.seen, p.step = p.seen + len(yb), i + 1
        if reporter:
            reporter.step(i + 1, p.loss_sum, p.correct, p.seen)
        if on_checkpoint is not None and i + 1 < steps and _due(plan, i + 1, saved):
            _sync(device)
            t.train_seconds += time.perf_counter() - start
            if not math.isfinite(p.loss_sum.item()):  # never checkpoint a diverged model
                raise TrainingError("the training loss became non-finite; stopping (the last "
                                    "good checkpoint is kept). Try a lower --lr.")
            on_checkpoint()
            start = saved = time.perf_counter()  # saving is not training time
    _sync(device)
    t.train_seconds += time.perf_counter() - start
    if plan.world > 1:  # the epoch's figures over every rank's images
        total_loss, total_correct, seen_all = distributed.all_sum(p.loss_sum, p.correct, p.seen)
        return {"loss": total_loss / seen_all, "accuracy": total_correct / seen_all}
    return {"loss": p.loss_sum.item() / p.seen, "accuracy": p.correct.item() / p.seen}


def _epoch_order(t: Training, n: int, shuffle: bool) -> torch.Tensor:
    """This epoch's order: drawn from the shuffle generator at the epoch's start (Keras
    reshuffles every epoch), or redrawn from the saved state for a resumed epoch."""
    if not shuffle:
        return torch.arange(n)
    if t.progress is None:
        t.progress = EpochProgress(t.shuffle.get_state())
        return torch.randperm(n, generator=t.shuffle)
    return torch.randperm(n, generator=torch.Generator().set_state(t.progress.order_rng))


def run_epochs(t: Training, x: torch.Tensor, y: torch.Tensor, plan: Plan,
               val: tuple[torch.Tensor, torch.Tensor] | None = None,
               reporter: Reporter | None = None,
               on_epoch: Callable[[int], None] | None = None,
               on_checkpoint: Callable[[int], None] | None = None) -> None:
    """Epochs `plan.first_epoch + 1 .. plan.epochs`, each reshuffled (Keras' fit); appends to
    `t.history` and calls `on_epoch(epoch)` after each completed epoch, and
    `on_checkpoint(completed epochs)` when a checkpoint is due inside one."""
    keep_freed_memory()  # each step reuses the last one's memory (a third of a step here)
    steps_per_epoch = math.ceil(len(x) / plan.batch_size)
    total = plan.total_steps if plan.total_steps is not None else math.inf
    for epoch in range(plan.first_epoch, plan.epochs):
        done_before = t.steps - (t.progress.step if t.progress else 0)
        if done_before >= total:
            break
        steps = int(min(steps_per_epoch, total - done_before))
        if reporter:
            reporter.epoch_begin(epoch + 1, plan.epochs, steps)
        order = _epoch_order(t, len(x), plan.shuffle).to(x.device)
        before = t.train_seconds
        try:
            logs = train_epoch(t, x, y, order, plan, steps, reporter,
                               None if on_checkpoint is None else partial(on_checkpoint, epoch))
        except BaseException:  # an interrupted epoch is resumed from a checkpoint only; the
            t.progress = None  # API's next fit() starts a fresh epoch, as Keras' does
            raise
        seconds = t.train_seconds - before
        if not math.isfinite(logs["loss"]):
            raise TrainingError(f"the training loss became non-finite in epoch {epoch + 1}; "
                                "stopping (the last good checkpoint is kept). Try a lower --lr.")
        if val is not None and plan.rank == 0:  # only rank 0 reports and writes
            metrics = evaluate_tensors(t.model, *val, bf16=plan.bf16)
            logs |= {"val_loss": metrics.loss, "val_accuracy": metrics.accuracy}
        t.history.append({"epoch": epoch + 1, **logs})
        t.progress = None
        if reporter:
            reporter.epoch_end(logs, seconds, steps)
        if on_epoch is not None:
            on_epoch(epoch + 1)


def fit(cfg: TrainConfig, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None = None, reporter: Reporter | None = None,
        state: TrainState | None = None,
        on_epoch: Callable[[TrainState], None] | None = None,
        checkpoint_steps: int | None = None,
        checkpoint_seconds: float | None = None) -> TrainResult:
    """Train `cfg.arch` on `train` (uint8 images, int labels); return the model and history.

    `state` (from a checkpoint) resumes a run; `on_epoch(state)` is called with a resumable
    state after every completed epoch, and inside an epoch every `checkpoint_steps` steps or
    `checkpoint_seconds` seconds, so the caller can save it.

    Under DDP (torchrun's ranks) checkpoints come at the ends of epochs only: a rank's
    epoch sums are its own until the epoch's end adds them up.
    """
    recipe, here = cfg.resolved_recipe(), distributed.world()
    device = distributed.local_device(resolve_device(cfg.device))
    if here.size > 1:
        distributed.check_batch(recipe.batch_size, here.size)
        checkpoint_steps = checkpoint_seconds = None
    bf16 = use_bf16(recipe.precision, device)
    x, y = to_tensors(*train, device, recipe.channels_last)
    val_t = to_tensors(*val, device, recipe.channels_last) if val is not None else None

    model = build_model(cfg.arch, seed=cfg.seed).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    total_steps = planned_steps(recipe, len(x), cfg.max_steps)
    spec = OptimizerSpec.named(recipe.optimizer, recipe.lr)
    t = Training.start(model, spec, schedule(recipe, total_steps), cfg.seed)
    t.distort = augment_generator(recipe.augment, cfg.seed)  # None unless the recipe augments
    if state is not None:
        t.restore(state)
        if here.size > 1 and t.progress is not None and not here.main:
            t.progress.loss_sum.zero_()  # an epoch resumed under DDP: its sums so far
            t.progress.correct.zero_()   # count once, on rank 0
            t.progress.seen = 0
    plan = Plan(recipe.epochs, recipe.batch_size, bf16, recipe.label_smoothing, total_steps,
                first_epoch=state.epoch if state is not None else 0,
                checkpoint_steps=checkpoint_steps, checkpoint_seconds=checkpoint_seconds,
                rank=here.rank, world=here.size, augment=recipe.augment)
    save = None if on_epoch is None else lambda epoch: on_epoch(t.snapshot(epoch, cfg))
    with distributed.guard():
        if here.size > 1:
            t.ddp = distributed.wrap(model)
        run_epochs(t, x, y, plan, val_t, reporter, on_epoch=save, on_checkpoint=save)
    return TrainResult(model=model.eval(), history=t.history, train_seconds=t.train_seconds,
                       steps=t.steps, device=str(device), precision="bf16" if bf16 else "fp32",
                       hyperparameters={**asdict(recipe), "optimizer": spec.to_dict(),
                                        "seed": cfg.seed,
                                        "validation_split": cfg.validation_split,
                                        "max_steps": cfg.max_steps})
