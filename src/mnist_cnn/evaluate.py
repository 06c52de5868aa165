"""Metrics: loss, accuracy, confusion matrix, per-class precision / recall / F1.

`evaluate()` returns a Metrics object; the CLI decides how to show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mnist_cnn.averaging import copies_per_image
from mnist_cnn.device import to_tensors, use_bf16

# Images per forward pass. Larger batches spill the activations out of cache (slower, not
# faster), and past glibc's mmap threshold every pass pays page faults for fresh memory.
EVAL_BATCH = 256


@dataclass(frozen=True)
class Metrics:
    loss: float
    accuracy: float
    confusion: np.ndarray  # (classes, classes): rows are true labels, columns predictions

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    def per_class(self) -> list[dict[str, float]]:
        """Precision, recall, F1 and support for each class (0 where undefined)."""
        tp = np.diag(self.confusion).astype(np.float64)
        predicted, actual = self.confusion.sum(0), self.confusion.sum(1)
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
        return [{"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for p, r, f, s in zip(precision, recall, f1, actual, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "count": self.count,
                "per_class": self.per_class(), "confusion_matrix": self.confusion.tolist()}


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH,
                   bf16: bool = False) -> torch.Tensor:
    """Logits for every image of `x` (N, 1, 28, 28) floats; `bf16` runs the layers in
    bfloat16 autocast, as a bf16 recipe trained them. A model that runs several copies of
    each image (test-time augmentation) gets proportionally fewer images per call, so that
    each forward pass stays at about `batch_size` images."""
    model.eval()
    step = max(1, batch_size // copies_per_image(model))
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        return torch.cat([model(x[i:i + step]).float() for i in range(0, len(x), step)])


def evaluate_tensors(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                     classes: int = 10, bf16: bool = False) -> Metrics:
    """Metrics of `model` on tensors already on its device."""
    was_training = model.training
    logits = predict_logits(model, x, bf16=bf16)
    model.train(was_training)
    return metrics_from_logits(logits, y, classes)


def metrics_from_logits(logits: torch.Tensor, y: torch.Tensor, classes: int = 10) -> Metrics:
    """Loss, accuracy and confusion matrix from float logits (N, classes) and labels (N,)."""
    loss = F.cross_entropy(logits, y).item()
    predicted = logits.argmax(1)
    pairs = (y * classes + predicted).cpu()  # (true, predicted) as one index
    confusion = torch.bincount(pairs, minlength=classes * classes).reshape(classes, classes)
    accuracy = (predicted == y).float().mean().item()
    return Metrics(loss=loss, accuracy=accuracy, confusion=confusion.numpy())


def evaluate(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
             precision: str = "fp32") -> Metrics:
    """Metrics of `model` on uint8 images (N, 28, 28) and integer labels.

    `precision` "bf16" evaluates in bfloat16 autocast where the hardware supports it (the
    numerics a bf16 recipe trained with); "fp32" is exact.
    """
    device = next(model.parameters()).device
    x, y = to_tensors(images, labels, device, channels_last=True)
    return evaluate_tensors(model, x, y, bf16=use_bf16(precision, device))
