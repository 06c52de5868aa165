"""Write a network as one self-contained ONNX file that outputs probabilities.

    input   image          float32 (N, 1, 28, 28): pixel / 255 in [0, 1], a light digit
                           on black, as MNIST draws them (N is free: a dynamic batch axis)
    output  probabilities  float32 (N, 10): the softmax over the classes, in the graph

The graph is traced by torch's TorchScript exporter (`torch.onnx.export(dynamo=False)`),
which needs no package besides `onnx` for the checks; the weights are stored inside the
file (no external-data sidecar). The file's doc_string and metadata_props say the same as
above, plus the architecture, dataset, classes and test accuracy, so the file explains
itself in any ONNX viewer. `onnx` and `onnxruntime` are the optional `[onnx]` extra.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnist_cnn import __version__
from mnist_cnn.averaging import Ensemble, probabilities
from mnist_cnn.errors import ModelFileError
from mnist_cnn.files import atomic_write, read_bounded
from mnist_cnn.model import INPUT_SHAPE, Net

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
BATCH_AXIS = "batch"
MAX_FILE_BYTES = 64 << 20  # model.MAX_PARAMS float32 weights (40 MB) and the graph
OPSET = 17  # every onnxruntime of the last years runs it; nothing here needs a newer op


class Probabilities(nn.Module):
    """The network with its final softmax, as the exported graph computes it."""

    def __init__(self, net: Net | Ensemble):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # (N, 10); an ensemble's graph holds every member and takes the mean of theirs
        return probabilities(self.net, image)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ModelFileError("exporting to ONNX needs onnx: pip install 'mnist-cnn[onnx]'")\
            from None
    return onnx


def input_description(classes: int) -> dict[str, str]:
    """What the graph's input and output are, in words (doc strings and metadata)."""
    h, w, c = INPUT_SHAPE
    return {
        INPUT_NAME: f"float32 (N, {c}, {h}, {w}): pixel / 255 in [0, 1], a light digit on a "
                    "black background, centred in a 20x20 box as MNIST draws them",
        OUTPUT_NAME: f"float32 (N, {classes}): softmax probabilities of the {classes} "
                     "classes, in class order; every row sums to 1"}


def _trace(net: Net | Ensemble) -> bytes:
    """The traced graph, serialised by torch (weights inside)."""
    # A copy: the caller's network keeps its device and memory format.
    model = Probabilities(copy.deepcopy(net).to("cpu", torch.float32)).eval()
    h, w, c = INPUT_SHAPE
    example = torch.zeros(2, c, h, w)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter announces its deprecation, and that it cannot fold the
        # constant Slice of 'same' average pooling's divisor (onnxruntime folds it when it
        # loads the graph). Neither changes the file, which is standard ONNX.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: BATCH_AXIS},
                                        OUTPUT_NAME: {0: BATCH_AXIS}},
                          do_constant_folding=True)
    return buffer.getvalue()


def onnx_bytes(net: Net | Ensemble, metadata: dict[str, Any] | None = None) -> bytes:
    """The checked ONNX model of `net` (probabilities out), with its description and
    `metadata` (str -> JSON-able) in metadata_props. An ensemble is one graph: every
    member, and the mean of their probabilities."""
    onnx = _onnx()
    classes = net.arch.shapes()[-1][0]
    proto = onnx.load_model_from_string(_trace(net))
    words = input_description(classes)
    for value in [*proto.graph.input, *proto.graph.output]:
        value.doc_string = words.get(value.name, "")
    what = (f"an ensemble of {len(net.members)} CNNs (the first: {net.arch.name}) whose "
            "answer is the mean of their probabilities," if isinstance(net, Ensemble)
            else f"{net.arch.name}, a CNN")
    proto.doc_string = (f"mnist-cnn {__version__}: {what} for 28x28 "
                        f"grayscale images. Input {INPUT_NAME}: {words[INPUT_NAME]}. "
                        f"Output {OUTPUT_NAME}: {words[OUTPUT_NAME]}.")
    props = {"input": f"{INPUT_NAME}: {words[INPUT_NAME]}",
             "output": f"{OUTPUT_NAME}: {words[OUTPUT_NAME]}",
             "architecture": json.dumps(net.arch.to_dict()),
             "producer": f"mnist-cnn {__version__}"}
    if isinstance(net, Ensemble):
        props["members"] = str(len(net.members))
    props |= {k: v if isinstance(v, str) else json.dumps(v)
              for k, v in (metadata or {}).items()}
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    # At most 10 million parameters (model.MAX_PARAMS): far under protobuf's 2 GB, so the
    # weights always fit inside the one file.
    return proto.SerializeToString()


def is_onnx_model(path: Path) -> bool:
    """Whether `path` holds an ONNX model (a graph with nodes), e.g. an earlier export."""
    onnx = _onnx()
    try:
        raw = read_bounded(Path(path), MAX_FILE_BYTES, ModelFileError, "ONNX file")
        proto = onnx.load_model_from_string(raw)
    except Exception:  # protobuf raises its own DecodeError, among others, for non-models
        return False
    return proto.ir_version > 0 and len(proto.graph.node) > 0


def write_onnx(net: Net | Ensemble, path: Path, metadata: dict[str, Any] | None = None) -> None:
    """Write `net` to `path` as a checked, self-contained ONNX file, atomically."""
    data = onnx_bytes(net, metadata)
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))
