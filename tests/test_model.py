"""Architectures: shapes, parameter counts, Keras initialisation, Keras' flatten order."""

from __future__ import annotations

import math

import pytest
import torch

from mnist_cnn.errors import ArchitectureError, UsageError
from mnist_cnn.model import ARCHITECTURES, Architecture, build_model, conv_base, count_params


@pytest.mark.parametrize("name, params, conv_params", [("lesson", 93322, 55744),
                                                       ("lesson-pool3", 60554, 55744)])
def test_parameter_counts(name, params, conv_params):
    model = build_model(name)
    assert count_params(model) == params
    assert count_params(build_model(conv_base(ARCHITECTURES[name]))) == conv_params


def test_output_shapes_follow_the_lesson():
    shapes = ARCHITECTURES["lesson"].shapes()
    assert shapes == [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 64),
                      (576,), (64,), (10,)]
    assert ARCHITECTURES["lesson-pool3"].shapes()[5] == (1, 1, 64)


def test_forward_returns_logits_for_a_batch():
    model = build_model("lesson", seed=0)
    logits = model(torch.rand(5, 1, 28, 28))
    assert logits.shape == (5, 10)
    assert not torch.allclose(logits.softmax(1).sum(1), logits.sum(1))  # not probabilities


def test_keras_initialisation_statistics():
    model = build_model("lesson", seed=0)
    for name, module in model.layers.items():
        if not hasattr(module, "weight"):
            continue
        w = module.weight.detach()
        receptive = w[0, 0].numel() if w.dim() == 4 else 1
        fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
        limit = math.sqrt(6 / (fan_in + fan_out))
        assert w.abs().max() <= limit, name
        assert w.abs().max() > 0.9 * limit, name  # uniform over the whole range
        assert abs(w.std().item() - limit / math.sqrt(3)) < 0.1 * limit, name
        assert abs(w.mean().item()) < 0.1 * limit, name
        assert torch.count_nonzero(module.bias) == 0, name


def test_same_seed_same_weights():
    a, b = build_model("lesson", seed=3), build_model("lesson", seed=3)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_flatten_uses_keras_channels_last_order():
    model = build_model("lesson")
    x = torch.arange(2 * 64 * 3 * 3, dtype=torch.float32).reshape(2, 64, 3, 3)
    flat = model.layers["flatten"](x)
    assert torch.equal(flat, x.permute(0, 2, 3, 1).reshape(2, 576))


def test_weight_names_are_keras_names():
    names = list(build_model("lesson").state_dict())
    assert names[:2] == ["layers.conv2d.weight", "layers.conv2d.bias"]
    assert names[-1] == "layers.dense_1.bias"


def test_unknown_architecture_lists_valid_ones():
    with pytest.raises(UsageError, match="lesson, lesson-pool3"):
        build_model("resnet")


def test_architecture_round_trips_through_json():
    arch = ARCHITECTURES["lesson-pool3"]
    assert Architecture.from_dict(arch.to_dict()) == arch


@pytest.mark.parametrize("damage", [
    lambda d: d.update(layers=[{"type": "Lambda", "code": "rm -rf"}]),
    lambda d: d["layers"][0].update(filters="32"),
    lambda d: d["layers"][0].update(filters=10**9),
    lambda d: d["layers"][0].update(activation="gelu"),
    lambda d: d["layers"][0].update(stride=2),
    lambda d: d.update(input_shape=[28, 28]),
    lambda d: d.update(layers=[{"type": "Dense", "units": 10}]),  # Dense on a 3-D map
    lambda d: d.update(layers=[{"type": "Conv2D", "filters": 8, "kernel_size": 40}]),
])
def test_damaged_architecture_is_refused(damage):
    description = ARCHITECTURES["lesson"].to_dict()
    damage(description)
    with pytest.raises(ArchitectureError):
        Architecture.from_dict(description)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_fast_forward_equals_layer_by_layer_forward(name):
    """forward() moves each ReLU after the pool that follows it; the result is identical."""
    model = build_model(name, seed=1)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_all(x)[-1][1])
        conv = model.layers["conv2d"](x)
        assert torch.equal(torch.relu(model.layers["max_pooling2d"](conv)),
                           model.layers["max_pooling2d"](torch.relu(conv)))
