"""Check our `.keras` files with real Keras: load them in safe mode, compare probabilities.

Two steps, because Keras (TensorFlow) never shares a venv with mnist-cnn:

1. In mnist-cnn's venv, write the models, the first N MNIST test images and our
   probabilities for them:
       .venv/bin/python benchmarks/keras_check.py write /tmp/keras-check [--run RUN]
   Models: the lesson's network (a trained run if --run is given, else Keras-initialised
   weights) and a custom architecture with strides 2, 'same' padding, AveragePooling2D,
   BatchNormalization (moving statistics moved off their defaults by training-mode passes)
   and Dropout.
2. In a venv that has Keras 3 (e.g. tensorflow-cpu), load each with
   `keras.models.load_model(path)` (safe mode, the default) and compare:
       /tmp/tfvenv/bin/python benchmarks/keras_check.py check /tmp/keras-check
   Prints one line per model and the versions; exits 1 if any differs by more than 1e-5.

Step 2 imports only numpy and keras (never mnist_cnn), so it runs wherever Keras does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TOLERANCE = 1e-5
COUNT = 1000
CUSTOM = {"name": "custom", "layers": [
    {"type": "Conv2D", "filters": 16, "kernel_size": 5, "strides": 2, "padding": "same",
     "activation": "relu"},
    {"type": "BatchNormalization"},
    {"type": "Conv2D", "filters": 32, "kernel_size": 3, "padding": "same",
     "activation": "tanh"},
    {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
    {"type": "MaxPooling2D", "pool_size": 2, "padding": "same"},
    {"type": "Flatten"},
    {"type": "Dropout", "rate": 0.3},
    {"type": "Dense", "units": 32, "activation": "sigmoid"},
    {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 0.01},
    {"type": "Dense", "units": 10, "activation": "softmax"}]}


def custom_model(x, seed: int = 0):
    """The custom architecture with random weights and non-trivial moving statistics:
    a few training-mode passes over real images move them off (0, 1)."""
    import torch

    from mnist_cnn.model import Architecture, build_model

    net = build_model(Architecture.from_dict(CUSTOM), seed=seed).train()
    with torch.no_grad():
        for i in range(0, 512, 128):
            net(x[i:i + 128])
    return net.eval()


def write(out: Path, run: str | None, data_dir: str | None) -> None:
    import numpy as np
    import torch

    from mnist_cnn import data
    from mnist_cnn.checkpoint import load_model
    from mnist_cnn.export_keras import write_keras
    from mnist_cnn.model import build_model

    _, (x_test, _) = data.load_data("mnist", data_dir)
    images = x_test[:COUNT]
    x = torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)  # (N, 1, 28, 28)
    lesson = load_model(run)[0] if run else build_model("lesson", seed=0).eval()
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "images.npy", images)
    for name, net in (("lesson", lesson), ("custom", custom_model(x))):
        write_keras(net, out / f"{name}.keras")
        with torch.no_grad():
            np.save(out / f"{name}_probs.npy", torch.softmax(net(x), dim=1).numpy())
    print(f"wrote lesson.keras, custom.keras and {COUNT} images' probabilities to {out}")


def check(folder: Path) -> int:
    import keras
    import numpy as np

    x = np.load(folder / "images.npy").astype(np.float32)[..., None] / 255  # (N, 28, 28, 1)
    worst = {}
    for name in ("lesson", "custom"):
        model = keras.models.load_model(folder / f"{name}.keras")  # safe_mode=True
        ours = np.load(folder / f"{name}_probs.npy")
        theirs = model.predict(x, batch_size=250, verbose=0)
        worst[name] = float(np.abs(theirs - ours).max())
        same = float((theirs.argmax(1) == ours.argmax(1)).mean())
        print(f"{name}: {model.count_params():,} params, max |keras - ours| = "
              f"{worst[name]:.2e} on {len(x)} images, same top class {same:.2%}")
    backend = keras.backend.backend()
    print(json.dumps({"keras": keras.__version__, "backend": backend,
                      "backend_version": getattr(sys.modules.get(
                          "tensorflow" if backend == "tensorflow" else backend),
                          "__version__", "?"), "max_abs_diff": worst,
                      "tolerance": TOLERANCE}))
    return 0 if all(v <= TOLERANCE for v in worst.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("--run", help="a trained run for the lesson's network")
    w.add_argument("--data-dir")
    sub.add_parser("check").add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.step == "write":
        write(args.out, args.run, args.data_dir)
        return 0
    return check(args.folder)


if __name__ == "__main__":
    sys.exit(main())
