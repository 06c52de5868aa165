"""`keras.optimizers`: Adam, SGD and RMSprop with Keras' defaults and update rules."""

from __future__ import annotations

from mnist_cnn.optimizers import OptimizerSpec


def Adam(learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,  # noqa: N802
         epsilon: float = 1e-7) -> OptimizerSpec:
    return OptimizerSpec("adam", learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


def SGD(learning_rate: float = 1e-2, momentum: float = 0.0,  # noqa: N802 (Keras' name)
        nesterov: bool = False) -> OptimizerSpec:
    return OptimizerSpec("sgd", learning_rate, momentum=momentum, nesterov=nesterov)


def RMSprop(learning_rate: float = 1e-3, rho: float = 0.9, momentum: float = 0.0,  # noqa: N802
            epsilon: float = 1e-7) -> OptimizerSpec:
    return OptimizerSpec("rmsprop", learning_rate, rho=rho, momentum=momentum, epsilon=epsilon)
