"""A run's model card: Hugging Face's layout (YAML front matter, then Markdown sections).

`model_card(run_dir)` reads model.json (architecture, dataset, recipe, test accuracy) and,
when the run's test set is on this machine, evaluates the model on it for the per-class
accuracy; it never downloads. The text is the same whichever format it sits beside, except
for the front matter's library and the file name its loading examples use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn.checkpoint import RunMeta, read_meta
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.summary import summarize

# Dataset ids on the model hub, for the front matter's `datasets` and `model-index`.
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist"}
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
WEB_CARD = "MODEL_CARD.md"  # the card's name inside an exported folder
LIBRARIES = {"onnx": "onnx", "keras": "keras"}  # anything else: the run itself (PyTorch)
_SETTINGS = {"epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate",
             "optimizer": "Optimizer", "schedule": "Learning-rate schedule", "seed": "Seed",
             "validation_split": "Validation split"}  # model.json hyperparameters shown


def _yaml(value: Any) -> str:
    # JSON scalars are valid YAML flow scalars; quoting every string keeps "0.99" a string.
    return json.dumps(value)


def front_matter(meta: RunMeta, export_format: str | None = None) -> str:
    """The YAML block: library, tags, datasets, metrics and the model-index result."""
    dataset = HUB_DATASETS.get(meta.dataset, meta.dataset)
    library = LIBRARIES.get(export_format or "", "pytorch")
    tags = ["image-classification", meta.dataset, "cnn", "mnist-cnn", "pytorch",
            *([export_format] if export_format in LIBRARIES else [])]
    lines = ["---", f"library_name: {library}", "pipeline_tag: image-classification",
             "tags:", *(f"- {_yaml(t)}" for t in dict.fromkeys(tags)),
             "datasets:", f"- {_yaml(dataset)}", "metrics:", "- accuracy"]
    accuracy = meta.metrics.get("test_accuracy")
    if accuracy is not None:
        lines += ["model-index:", f"- name: {_yaml(meta.architecture.name)}", "  results:",
                  "  - task:", "      type: image-classification",
                  "      name: Image Classification", "    dataset:",
                  f"      name: {_yaml(TITLES.get(meta.dataset, meta.dataset))}",
                  f"      type: {_yaml(dataset)}", "      split: test", "    metrics:",
                  "    - type: accuracy", f"      value: {round(accuracy, 6)}",
                  "      name: Test accuracy"]
    return "\n".join(lines + ["---"])


def _architecture_table(meta: RunMeta) -> str:
    summary = summarize(meta.architecture)
    rows = ["| Layer (type) | Output shape | Param # |", "|---|---|---:|"]
    for row in summary.rows:
        shape = "(None, " + ", ".join(map(str, row.output_shape)) + ")"
        rows.append(f"| {row.name} ({row.kind}) | {shape} | {row.params:,} |")
    total, frozen = summary.total_params, summary.non_trainable_params
    frozen_text = (f", {frozen:,} non-trainable: BatchNormalization's moving statistics"
                   if frozen else "")
    rows.append(f"\nTotal parameters: {total:,} ({total - frozen:,} trainable{frozen_text}).")
    return "\n".join(rows)


def _classes(meta: RunMeta) -> tuple[str, ...]:
    from mnist_cnn.datasets import get_dataset

    try:
        return get_dataset(meta.dataset).classes
    except MnistCnnError:
        return tuple(str(i) for i in range(10))


def _logits_note(meta: RunMeta) -> str:
    last = meta.architecture.layers[-1]
    if getattr(last, "activation", "softmax") is None:  # a linear last layer: logits
        return " (the Keras file keeps the last layer linear, as built: it outputs logits)"
    return ""


def _details(meta: RunMeta) -> str:
    classes = _classes(meta)
    made = ", ".join(f"{k} {v}" for k, v in meta.versions.items())
    return "\n".join([
        "## Model details", "",
        f"- Architecture: `{meta.architecture.name}`, a Keras-style Sequential CNN "
        f"({len(meta.architecture.layers)} layers), "
        + ("imported into mnist-cnn from a model trained by Keras." if meta.source
           else "trained with mnist-cnn on PyTorch."),
        "- Input: one 28x28 grayscale image, pixel / 255 in [0, 1]; a batch is (N, 1, 28, 28) "
        "float32 (channels first; the Keras file takes (N, 28, 28, 1)).",
        f"- Output: {len(classes)} probabilities (softmax), for classes "
        f"{', '.join(classes)} in that order" + _logits_note(meta) + ".",
        *([f"- Made with: {made}."] if made else []),
        *([f"- Saved: {meta.date}."] if meta.date else []), "",
        _architecture_table(meta)])


def _recipe(meta: RunMeta) -> str:
    title = TITLES.get(meta.dataset, meta.dataset)
    lines = ["## Training data and recipe", "",
             f"- Data: the {title} training set (60,000 28x28 grayscale images, "
             f"{len(_classes(meta))} classes); the 10,000 test images were not trained on."]
    if meta.source:
        lines.append("- Imported from a model trained elsewhere: " + ", ".join(
            f"{k} `{v}`" for k, v in meta.source.items()) + ".")
    if meta.recipe:
        lines.append(f"- Recipe: `{meta.recipe}`.")
    hp = meta.hyperparameters
    for key, label in _SETTINGS.items():
        if hp.get(key) is not None:
            value = hp[key]
            text = (", ".join(f"{k}={v}" for k, v in value.items())
                    if isinstance(value, dict) else value)
            lines.append(f"- {label}: {text}")
    t = meta.timing
    if t.train_seconds is not None:
        where = f" on {t.device}" if t.device else ""
        lines.append(f"- Training took {t.train_seconds:.1f} s{where} "
                     f"({t.steps or '?'} steps, {t.precision}).")
    return "\n".join(lines)


def test_confusion(run_dir: Path, meta: RunMeta,
                   data_dir: str | Path | None) -> np.ndarray | str:
    """The confusion matrix on the run's test set (rows: true classes), or why it could
    not be computed (the test set not on this machine: nothing is downloaded)."""
    from mnist_cnn import data
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.evaluate import evaluate

    ds = data.get_dataset(meta.dataset)
    if any(data.find_file(ds, split, data_dir) is None for split in ("t10k-images",
                                                                       "t10k-labels")):
        return (f"the {ds.name} test set was not found on this machine; pass --data-dir or "
                f"set {data.ENV_VAR}")
    try:
        images = data.load_split(ds, "t10k-images", data_dir, download=False)
        labels = data.load_split(ds, "t10k-labels", data_dir, download=False)
    except MnistCnnError as exc:
        return str(exc)[:300]
    model, _ = load_model(run_dir)
    return evaluate(model, images, labels, meta.timing.precision).confusion


def _evaluation(meta: RunMeta, confusion: np.ndarray | str) -> str:
    title = TITLES.get(meta.dataset, meta.dataset)
    lines = ["## Evaluation", ""]
    accuracy, loss = meta.metrics.get("test_accuracy"), meta.metrics.get("test_loss")
    if accuracy is None:
        lines.append("The run records no test accuracy.")
    else:
        lines.append(f"Test accuracy on the {title} test set (10,000 images): "
                     f"**{accuracy:.2%}**" + (f", loss {loss:.4f}." if loss is not None else "."))
    lines.append("")
    if isinstance(confusion, str):
        lines.append(f"Per-class accuracy is not included: {confusion}.")
        return "\n".join(lines)
    right, count = np.diag(confusion), confusion.sum(1)
    lines += [f"Per-class accuracy (the share of each class's test images predicted right; "
              f"{right.sum() / count.sum():.2%} in all when this card was written):", "",
              "| Class | Test images | Accuracy |", "|---|---:|---:|"]
    lines += [f"| {name} | {n:,} | {r / max(n, 1):.2%} |"
              for name, r, n in zip(_classes(meta), right, count, strict=False)]
    return "\n".join(lines)


def _use_and_limits(meta: RunMeta) -> str:
    classes, title = ", ".join(_classes(meta)), TITLES.get(meta.dataset, meta.dataset)
    digits = meta.dataset == "mnist"
    if digits:
        use = ("Classifying single, centred 28x28 grayscale digit images like those of MNIST: "
               "teaching, demos and as a baseline. It is not meant for reading documents, "
               "forms or cheques without a system around it that finds, crops and checks "
               "each character.")
        expects = ("It expects MNIST-style input: a light digit on a black background, "
                   "centred by its centre of mass in a 20x20 box inside the 28x28 image. "
                   "Photos and drawings need that preparation first; `mnist-cnn predict` "
                   "and `mnist-cnn serve` do it.")
    else:
        use = (f"Classifying 28x28 grayscale images like those of {title}: teaching, demos "
               "and as a baseline.")
        expects = (f"It expects input like {title}'s own: a light, centred object on a black "
                   "background, 28x28. (`mnist-cnn predict` prepares photos of handwritten "
                   "digits, not of other things.)")
    return "\n".join([
        "## Intended use", "", use, "", "## Limitations", "",
        f"- There is no \"{'not a digit' if digits else 'none of these'}\" class: every "
        f"input is forced into one of {classes}, however little it resembles them, and the "
        "probabilities can be high even then.",
        f"- {expects}",
        f"- The test accuracy is measured on {title}'s own test images; "
        f"{'other handwriting, scanners and styles' if digits else 'other photos and styles'}"
        " can score lower."])


def _loading(file_name: str | None) -> str:
    onnx_file = file_name if file_name and file_name.endswith(".onnx") else "model.onnx"
    keras_file = file_name if file_name and file_name.endswith(".keras") else "model.keras"
    return "\n".join([
        "## How to load it", "",
        "ONNX (`mnist-cnn export RUN --format onnx`), with onnxruntime:", "", "```python",
        "import numpy as np, onnxruntime as ort",
        f"session = ort.InferenceSession({onnx_file!r})",
        "x = np.zeros((1, 1, 28, 28), np.float32)  # pixel / 255, light on black",
        "probabilities = session.run(['probabilities'], {'image': x})[0]  # (1, 10)",
        "```", "",
        "Keras 3 (`mnist-cnn export RUN --format keras`; safe mode, no custom code):", "",
        "```python", "import keras, numpy as np",
        f"model = keras.models.load_model({keras_file!r})",
        "probabilities = model.predict(np.zeros((1, 28, 28, 1), np.float32))  # (1, 10)",
        "```", "",
        "Web (`mnist-cnn export RUN --format web`): the draw-a-digit page as a folder that "
        f"runs the network in the browser, with its model card as {WEB_CARD}.", "",
        "The run directory itself (weights in safetensors, model.json), with mnist-cnn: "
        "`mnist-cnn predict RUN photo.png`, `mnist-cnn serve RUN`, or in Python "
        "`mnist_cnn.predict.Predictor.from_run(RUN)`."])


def _ensemble_note(meta: RunMeta) -> str:
    if not meta.members:
        return ""
    return (f" It is an ensemble of {len(meta.members)} such networks (`mnist-cnn ensemble`): "
            "its answer is the mean of their probabilities. The architecture below is the "
            "first member's; each member, with its own recipe, is in the run's members/ "
            "folder.")


def is_model_card(path: Path) -> bool:
    """Whether `path` holds a model card this module wrote (so an export may replace it)."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    end = head.find("\n---", 4)
    return head.startswith("---\nlibrary_name:") and end > 0 and '"mnist-cnn"' in head[:end]


def model_card(run_dir: str | Path, data_dir: str | Path | None = None, *,
               export_format: str | None = None, file_name: str | None = None,
               confusion: np.ndarray | None = None) -> str:
    """The run's model card as Markdown with YAML front matter. `export_format` ("onnx",
    "keras", "web") names the library in the front matter; `file_name` is used in the
    loading examples; `confusion` (the test set's, when the caller has it, as `report` does)
    saves evaluating the model again."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if confusion is None:
        confusion = test_confusion(run_dir, meta, data_dir)
    title = TITLES.get(meta.dataset, meta.dataset)
    parts = [front_matter(meta, export_format), "",
             f"# {' '.join(meta.architecture.name.split())}: a CNN for {title}", "",
             "A Keras-style convolutional network in the vocabulary of the classic "
             "CNN-on-MNIST lesson, saved by mnist-cnn." + _ensemble_note(meta), "",
             _details(meta), "", _recipe(meta), "", _evaluation(meta, confusion), "",
             _use_and_limits(meta), "", _loading(file_name)]
    return "\n".join(parts) + "\n"
