"""fit, evaluate and predict for the Keras-style model: the same loop (train.run_epochs) and
evaluation (evaluate.predict_logits) as the command line, with Keras' printing."""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from mnist_cnn.console import KerasProgress, eval_line, progress_bar
from mnist_cnn.device import images_to_tensor
from mnist_cnn.errors import UsageError
from mnist_cnn.evaluate import predict_logits
from mnist_cnn.keras import data
from mnist_cnn.keras.compiled import Compiled
from mnist_cnn.train import Plan, Training, run_epochs, split_validation

if TYPE_CHECKING:
    from mnist_cnn.keras.models import Sequential


def _unsupported(what: str, unsupported: dict[str, Any]) -> None:
    if unsupported:
        raise UsageError(f"{what}: {', '.join(sorted(unsupported))} not supported by mnist-cnn")


def _tensors(model: Sequential, compiled: Compiled, x: Any, y: Any):
    images = data.images(x)
    labels = data.labels(y, len(images), compiled.loss.labels == "categorical")
    return images_to_tensor(images, data.device()), data.label_tensor(labels, data.device())


def fit(model: Sequential, compiled: Compiled, x: Any, y: Any, batch_size: Any, epochs: Any,
        verbose: Any, validation_split: Any, validation_data: Any, shuffle: Any,
        unsupported: dict[str, Any]) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Train; return this call's per-epoch rows (as in History) and Keras' params."""
    _unsupported("fit", unsupported)
    level, size = data.verbosity(verbose), data.batch(batch_size)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise UsageError(f"epochs must be a positive integer, got {epochs!r}")
    images = data.images(x)
    labels = data.labels(y, len(images), compiled.loss.labels == "categorical")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) < 2:
            raise UsageError("validation_data must be (x_val, y_val)")
        val = validation_data[:2]
    else:
        (images, labels), val = split_validation(images, labels, validation_split)
    x_t, y_t = images_to_tensor(images, data.device()), data.label_tensor(labels, data.device())
    val_t = _tensors(model, compiled, *val) if val is not None else None
    if model._training is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())  # from the global seed, as Keras
        model._training = Training.start(model.net, compiled.optimizer, lambda step: 1.0, seed)
    t = model._training
    before = len(t.history)
    keys = ("loss", "accuracy") if compiled.accuracy else ("loss",)
    reporter = KerasProgress(verbose=level, metrics=keys) if level else None
    run_epochs(t, x_t, y_t, Plan(epochs, size, shuffle=bool(shuffle)), val_t, reporter)
    rows = [{k: v for k, v in row.items() if k.removeprefix("val_") in keys or k == "epoch"}
            for row in t.history[before:]]
    steps = math.ceil(len(images) / size)
    return rows, {"verbose": level, "epochs": epochs, "steps": steps}


def evaluate(model: Sequential, compiled: Compiled, x: Any, y: Any, batch_size: Any,
             verbose: Any, return_dict: bool, unsupported: dict[str, Any]) -> Any:
    """Loss and accuracy, printed as Keras prints them (verbose=2: the lesson's line)."""
    _unsupported("evaluate", unsupported)
    level, size = data.verbosity(verbose), data.batch(batch_size)
    x_t, y_t = _tensors(model, compiled, x, y)
    start = time.perf_counter()
    logits = predict_logits(model.net, x_t)
    loss = F.cross_entropy(logits, y_t).item()
    labels = y_t if y_t.dim() == 1 else y_t.argmax(1)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    seconds = time.perf_counter() - start
    batches = math.ceil(len(x_t) / size)
    if level == 2:
        line = eval_line(batches, seconds, loss, accuracy)
        print(line if compiled.accuracy else line.rsplit(" - accuracy", 1)[0])
    elif level == 1:
        logs = f" - loss: {loss:.4f}" + (f" - accuracy: {accuracy:.4f}" if compiled.accuracy
                                         else "")
        print(f"{progress_bar(batches, batches)} - {seconds:.0f}s "
              f"{seconds / batches * 1e3:.0f}ms/step{logs}")
    result = {"loss": loss, **({"accuracy": accuracy} if compiled.accuracy else {})}
    if return_dict:
        return result
    return list(result.values()) if compiled.accuracy else loss


def predict(model: Sequential, x: Any, batch_size: Any, verbose: Any,
            unsupported: dict[str, Any]) -> np.ndarray:
    """The last layer's outputs: probabilities when it ends in softmax, else logits."""
    _unsupported("predict", unsupported)
    level, size = data.verbosity(verbose), data.batch(batch_size)
    net = model._built()
    images = data.images(x)
    start = time.perf_counter()
    outputs = predict_logits(net, images_to_tensor(images, data.device()))
    if net.arch.layers[-1].activation == "softmax":
        outputs = torch.softmax(outputs, dim=1)
    if outputs.dim() == 4:  # a stack that ends in maps: channels-last, as Keras gives them
        outputs = outputs.permute(0, 2, 3, 1)
    seconds = time.perf_counter() - start
    if level:
        batches = math.ceil(len(images) / size)
        print(f"{progress_bar(batches, batches)} - {seconds:.0f}s "
              f"{seconds / batches * 1e3:.0f}ms/step", file=sys.stdout)
    return outputs.cpu().numpy()
