"""A Keras-style API on mnist-cnn's engine: the lesson's program runs with its import line
changed to `from mnist_cnn.keras import datasets, layers, models`.

    from mnist_cnn import keras
    model = keras.models.Sequential([keras.Input(shape=(28, 28, 1)),
                                     keras.layers.Conv2D(32, (3, 3), activation="relu"), ...])

What of Keras is here, and what is not: docs/KERAS.md.
"""

from mnist_cnn.keras import datasets, layers, losses, models, optimizers, utils
from mnist_cnn.keras.layers import Input
from mnist_cnn.keras.models import Sequential, load_model

__all__ = ["Input", "Sequential", "datasets", "layers", "load_model", "losses", "models",
           "optimizers", "utils"]
