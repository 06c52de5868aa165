"""A custom architecture for the export tests: every setting the lesson's network lacks
(strides 2, 'same' padding, AveragePooling2D, BatchNormalization, Dropout), briefly trained
so that its probabilities are confident and its moving statistics far from (0, 1)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mnist_cnn.model import Architecture, Net, build_model

CUSTOM = {"name": "custom", "layers": [
    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "strides": 2, "padding": "same",
     "activation": "relu"},
    {"type": "BatchNormalization", "momentum": 0.8},
    {"type": "Conv2D", "filters": 32, "kernel_size": [3, 5], "padding": "same",
     "activation": "tanh", "use_bias": False},
    {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
    {"type": "MaxPooling2D", "pool_size": 2, "padding": "same"},
    {"type": "Flatten"},
    {"type": "Dropout", "rate": 0.25},
    {"type": "Dense", "units": 32, "activation": "sigmoid"},
    {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 0.01},
    {"type": "Dense", "units": 10, "activation": "softmax"}]}


def custom_net(images: np.ndarray, labels: np.ndarray, steps: int = 100) -> Net:
    """The custom network after `steps` Adam steps (batch 64, momentum-0.99 statistics
    updated on every step) on the given uint8 images."""
    net = build_model(Architecture.from_dict(CUSTOM), seed=0).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    for step in range(steps):
        batch = slice(step * 64 % len(x), step * 64 % len(x) + 64)
        optimizer.zero_grad()
        F.cross_entropy(net(x[batch]), y[batch]).backward()
        optimizer.step()
    return net.eval()
