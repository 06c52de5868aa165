"""Load a model once, predict batches, expose every layer's response.

The Predictor keeps the model built and warm: a single-image prediction does no rebuilding,
no file access and no autograd bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_cnn.averaging import Averaging, probabilities
from mnist_cnn.checkpoint import RunMeta, load_model
from mnist_cnn.errors import ImageError
from mnist_cnn.layers import Conv2D
from mnist_cnn.model import Net
from mnist_cnn.summary import render_keras, summarize


@dataclass(frozen=True)
class LayerOutput:
    """One layer's response to one image."""

    name: str  # Keras name, e.g. "max_pooling2d_1"
    kind: str  # the layer's type: "Conv2D", "MaxPooling2D", "Flatten", "Dense", ...
    shape: tuple[int, ...]  # Keras channels-last shape without the batch, e.g. (26, 26, 32)
    values: np.ndarray  # (C, H, W) for maps, (F,) for vectors; softmax for the last layer


def _as_batch(images: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) or (28, 28) uint8 0..255 (or floats 0..1) -> (N, 1, 28, 28) float32."""
    arr = np.asarray(images)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28):
        raise ImageError(f"expected 28x28 images, got an array of shape {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if arr.dtype == np.uint8:
        x = x / 255.0
    return x.unsqueeze(1)


class Predictor:
    """A trained model loaded once, for many predictions."""

    def __init__(self, model: Net | Averaging, meta: RunMeta | dict[str, Any] | None = None):
        """`model`: a network, or an averaging model (an ensemble, test-time augmentation),
        which shows one network's layers and answers as a whole. `meta` (model.json's
        content) may be a RunMeta or a dict of its fields."""
        self.model = model.eval()
        if isinstance(meta, dict):
            meta = RunMeta.from_dict({**meta, "architecture": model.arch.to_dict()})
        self.meta = meta
        self.arch = model.arch
        self.summary_text = render_keras(summarize(model.arch))
        self._kinds = [type(layer).__name__ for layer in model.arch.layers]
        self._shapes = model.arch.shapes()

    @classmethod
    def from_run(cls, run_dir: str | Path, tta: int = 1) -> Predictor:
        """The run's model; with `tta` > 1, averaged over that many views of each image
        (see tta.py)."""
        from mnist_cnn.tta import with_tta

        model, meta = load_model(run_dir)
        return cls(with_tta(model, tta), meta)

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) images -> (N, 10) probabilities as float32 (the mean itself for an
        averaging model)."""
        return probabilities(self.model, _as_batch(images)).numpy()

    @torch.inference_mode()
    def activations(self, image: np.ndarray) -> list[LayerOutput]:
        """Every layer's output for one (28, 28) image, in order, named as Keras names it."""
        outputs = self.model.forward_all(_as_batch(image))
        result = []
        for i, (name, out) in enumerate(outputs):
            values = out[0]
            if i == len(outputs) - 1:
                values = torch.softmax(values, dim=0)
            result.append(LayerOutput(name, self._kinds[i], tuple(self._shapes[i]),
                                      values.numpy().astype(np.float32)))
        return result

    def conv1_filters(self) -> np.ndarray:
        """The first convolution's learned kernels on its first input channel, as
        (filters, kh, kw); empty (0, 0, 0) for a network without a convolution."""
        for layer, module in zip(self.arch.layers, self.model.layers.values(), strict=True):
            if isinstance(layer, Conv2D):
                return module.weight.detach()[:, 0].float().numpy().copy()
        return np.zeros((0, 0, 0), np.float32)


# ---------------------------------------------------------------------------------------
# Predicting a person's image files (`mnist-cnn predict`): inputs -> prepared digits -> rows.

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")  # for folder listings only;
# a file named explicitly is read whatever its name, and its format comes from its bytes


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their image files, sorted) and glob patterns -> a list of files.

    Raises UsageError naming the first input that matches nothing.
    """
    import glob

    from mnist_cnn.errors import UsageError

    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found = [path]
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            raise UsageError(f"{item}: no such file or folder")
        if not found:
            raise UsageError(f"{item}: no image files match")
        paths.extend(found)
    return paths


def predict_images(predictor: Predictor, paths: list[Path], top_k: int = 3,
                   save_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per file: file, label, probabilities, top_k, error, saved.

    A file that cannot be used (not an image, too large, no digit) gets its `error` and a
    null label; the others are predicted in one batch. With `save_dir`, the 28x28 image the
    network saw is written there as PNG.
    """
    from mnist_cnn.errors import MnistCnnError
    from mnist_cnn.preprocess import prepare_file

    rows: list[dict[str, Any]] = []
    digits: dict[int, np.ndarray] = {}
    for i, path in enumerate(paths):
        rows.append({"file": str(path), "label": None, "probabilities": None, "top_k": [],
                     "error": None, "saved": None})
        try:
            digits[i] = prepare_file(path)
        except MnistCnnError as exc:
            rows[i]["error"] = str(exc)
    if digits:
        probs = predictor.probabilities(np.stack(list(digits.values())))
        for (i, digit), p in zip(digits.items(), probs, strict=True):
            order = np.argsort(-p)[: max(1, top_k)]
            rows[i].update(label=int(order[0]), probabilities=[round(float(v), 6) for v in p],
                           top_k=[{"label": int(d), "probability": round(float(p[d]), 6)}
                                  for d in order])
            if save_dir is not None:
                rows[i]["saved"] = str(_save_digit(digit, Path(save_dir), paths[i], i))
    return rows


def _save_digit(digit: np.ndarray, folder: Path, source: Path, index: int) -> Path:
    """Write the 28x28 digit as PNG (numbered, so equal names from two folders both stay),
    atomically, so no half-written image is ever left behind."""
    from PIL import Image

    from mnist_cnn.files import atomic_write

    target = folder / f"{index:04d}-{source.stem}.png"
    atomic_write(target, lambda tmp: Image.fromarray(digit).save(tmp, format="PNG"))
    return target
