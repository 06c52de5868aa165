"""Keras' layer semantics, layer by layer, and the errors a bad stack gets."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from mnist_cnn.cli import main
from mnist_cnn.errors import ArchitectureError
from mnist_cnn.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    layer_from_dict,
)
from mnist_cnn.model import Architecture, Net, build_model


def _arch(*layers) -> Architecture:
    return Architecture("test", tuple(layers)).validate()


@pytest.mark.parametrize("layer, shape", [
    (Conv2D(4, 3), (26, 26, 4)),
    (Conv2D(4, 3, padding="same"), (28, 28, 4)),
    (Conv2D(4, 5, strides=2, padding="same"), (14, 14, 4)),
    (Conv2D(4, (3, 5), strides=(1, 2)), (26, 12, 4)),
    (Conv2D(4, 4, strides=3), (9, 9, 4)),
    (MaxPooling2D(3, strides=2), (13, 13, 1)),
    (MaxPooling2D(3, strides=2, padding="same"), (14, 14, 1)),
    (AveragePooling2D(5), (5, 5, 1)),
])
def test_output_shapes_follow_keras(layer, shape):
    assert _arch(layer).shapes()[0] == shape
    out = Net(_arch(layer))(torch.rand(2, 1, 28, 28))
    assert tuple(out.shape[1:]) == (shape[2], shape[0], shape[1])


def test_same_padding_puts_the_odd_cell_after():
    """28 -> 14 with a 5x5 kernel, stride 2: 3 padded cells, 1 before and 2 after (Keras)."""
    net = Net(_arch(Conv2D(1, 5, strides=2, padding="same", use_bias=False)))
    conv = net.layers["conv2d"]
    x = torch.rand(1, 1, 28, 28)
    expected = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.weight, stride=2)
    torch.testing.assert_close(net(x), expected)


def test_average_pooling_same_averages_only_real_cells():
    net = Net(_arch(AveragePooling2D(3, strides=2, padding="same")))
    x = torch.ones(1, 1, 28, 28)
    assert torch.allclose(net(x), torch.ones(1, 1, 14, 14))  # zeros padding would lower edges


def test_max_pooling_same_pads_with_minus_infinity():
    net = Net(_arch(MaxPooling2D(3, strides=2, padding="same")))
    x = -torch.ones(1, 1, 28, 28)
    assert torch.equal(net(x), -torch.ones(1, 1, 14, 14))


def test_batch_normalization_trains_like_keras():
    net = Net(_arch(Conv2D(3, 3), BatchNormalization(momentum=0.9)))
    bn = net.layers["batch_normalization"]
    x = torch.randn(8, 1, 28, 28) * 3 + 1
    conv = net.layers["conv2d"](x)
    net.train()
    out = net(x)
    mean, var = conv.mean((0, 2, 3)), conv.var((0, 2, 3), unbiased=False)
    torch.testing.assert_close(bn.moving_mean, 0.1 * mean)  # 0.9 * 0 + 0.1 * mean
    torch.testing.assert_close(bn.moving_variance, 0.9 + 0.1 * var)  # biased, as Keras
    normed = (conv - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-3)
    torch.testing.assert_close(out, normed, atol=1e-5, rtol=1e-5)
    net.eval()
    expected = (conv - bn.moving_mean[None, :, None, None]) / torch.sqrt(
        bn.moving_variance[None, :, None, None] + 1e-3)
    torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=1e-5)


def test_dropout_drops_while_training_and_passes_through_at_inference():
    net = Net(_arch(Flatten(), Dropout(0.5)))
    x = torch.ones(4, 1, 28, 28)
    net.eval()
    assert torch.equal(net(x), torch.ones(4, 784))
    net.train()
    out = net(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # kept values scaled by 1 / (1 - rate)


def test_parameters_count_like_keras():
    arch = _arch(Conv2D(8, (3, 5), use_bias=False), BatchNormalization(), Flatten(),
                 Dense(10, "softmax"))
    net = Net(arch)
    kernel, norm, dense = 3 * 5 * 1 * 8, 4 * 8, (26 * 24 * 8) * 10 + 10
    assert sum(p.numel() for p in net.parameters()) + sum(
        b.numel() for b in net.buffers()) == arch.param_count() == kernel + norm + dense


@pytest.mark.parametrize("layers, message", [
    ([Dense(10, "softmax")], "layer 1 (dense: Dense): needs a flat input"),
    ([Conv2D(8, 3), Flatten(), Conv2D(4, 3)], "layer 3 (conv2d_1: Conv2D): needs an (H, W, C)"),
    ([Conv2D(8, 3), MaxPooling2D(2), Conv2D(8, 3), MaxPooling2D(2), Conv2D(8, 7)],
     "layer 5 (conv2d_2: Conv2D): kernel 7x7 is larger than its input 5x5"),
    ([Flatten()] * 65, "65 layers; at most 64"),
    ([Flatten(), Dense(4096), Dense(4096)], "parameters; at most 10,000,000"),
])
def test_a_bad_stack_names_the_layer_and_the_reason(layers, message):
    with pytest.raises(ArchitectureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _arch(*layers)


@pytest.mark.parametrize("make, message", [
    (lambda: Conv2D(0, 3), "filters must be an integer in 1..4096, got 0"),
    (lambda: Conv2D(-4, 3), "filters must be an integer in 1..4096, got -4"),
    (lambda: Conv2D(8, (3, 0)), "kernel_size must be an integer in 1..64, got 0"),
    (lambda: Conv2D(8, 3, activation="gelu"), "unknown activation 'gelu'"),
    (lambda: Conv2D(8, 3, padding="full"), "padding must be 'valid' or 'same'"),
    (lambda: Dense(0), "units must be an integer in 1..4096"),
    (lambda: Dropout(1.0), r"rate must be a number in \[0.0, 1.0\)"),
    (lambda: layer_from_dict({"type": "Lambda"}), "unknown layer type 'Lambda'"),
    (lambda: layer_from_dict({"type": "Conv2D", "filters": 8, "stride": 2}),
     "unknown setting 'stride'"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ArchitectureError, match=message):
        make()


def test_older_files_single_ints_still_read():
    layer = layer_from_dict({"type": "Conv2D", "filters": 32, "kernel_size": 3,
                             "activation": "relu"})
    assert layer == Conv2D(32, (3, 3), (1, 1), "valid", "relu")
    assert layer_from_dict({"type": "MaxPooling2D", "pool_size": 2}) == MaxPooling2D((2, 2))


def test_old_names_still_build_the_lessons_network():
    assert build_model("seed").arch == build_model("lesson").arch


@pytest.mark.parametrize("layers", [
    [{"type": "Dense", "units": 10}],
    [{"type": "Conv2D", "filters": 8, "kernel_size": 40}],
    [{"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "swish"}],
])
def test_a_bad_arch_file_is_one_line_and_exit_2_before_any_data(tmp_path, capsys,
                                                                   monkeypatch, layers):
    monkeypatch.setenv("MNIST_CNN_DATA", str(tmp_path / "no-data-here"))
    spec = tmp_path / "my.json"
    spec.write_text(json.dumps(layers + [{"type": "Flatten"},
                                         {"type": "Dense", "units": 10,
                                          "activation": "softmax"}]))
    assert main(["train", "--arch", str(spec)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "layer 1" in err
    assert "Traceback" not in err and "not found" not in err
