"""The lesson's own Keras program, timed: run with a Python that has TensorFlow (never a
dependency of this project), e.g. a side venv, with this checkout's src on PYTHONPATH:

    PYTHONPATH=src /tmp/tfvenv/bin/python benchmarks/keras_lesson.py [--seed 0] [--epochs 5]

Prints one JSON line: fit() seconds, test accuracy, TensorFlow's version and threads.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    import tensorflow as tf

    from mnist_cnn.data import load_data  # numpy only: no torch needed here

    (x_train, y_train), (x_test, y_test) = load_data("mnist")
    x_train = x_train.reshape(-1, 28, 28, 1) / 255.0
    x_test = x_test.reshape(-1, 28, 28, 1) / 255.0
    tf.keras.utils.set_random_seed(args.seed)
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.Flatten(),
        layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    print(json.dumps({"train_seconds": seconds, "test_accuracy": accuracy,
                      "tensorflow": tf.__version__,
                      "threads": tf.config.threading.get_intra_op_parallelism_threads()}))


if __name__ == "__main__":
    main()
