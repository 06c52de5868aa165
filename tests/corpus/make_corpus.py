"""Writes the nasty-file corpus beside this script (`python tests/corpus/make_corpus.py`).

The files are committed (a few KB in all) so that the tests read fixed bytes; this script
says how each was made. Big ones (gzip bombs) are generated inside the tests instead.
The pickle payloads would create a folder named PWNED in the current directory if anything
ever executed them: the tests run from a temporary directory and assert it never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
MARKER = "PWNED"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


class _Payload:
    def __reduce__(self):
        return (os.mkdir, (MARKER,))


def _idx(dims: tuple[int, ...], body: bytes = b"") -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + body


def _safetensors(header: dict | bytes, body: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _torch_zip(pickled: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # the layout torch.save writes; fixed dates
        for name, body in (("data.pkl", pickled), ("version", b"3\n"), ("byteorder", b"little")):
            z.writestr(zipfile.ZipInfo(f"archive/{name}", (2020, 1, 1, 0, 0, 0)), body)
    return buf.getvalue()


def corpus() -> dict[str, bytes]:
    payload = pickle.dumps({"epoch": 1, "model": _Payload()}, protocol=2)
    return {
        # IDX files (the dataset reader)
        "idx/zero-length.idx": b"",
        "idx/wrong-magic.idx": PNG,
        "idx/truncated-header.idx": _idx((60000, 28, 28))[:9],
        "idx/absurd-dims.idx": _idx((2**32 - 1,) * 3),
        "idx/dims-product-wraps-int64.idx": _idx((2**31, 2**31, 4)),
        "idx/truncated-body.idx": _idx((10, 28, 28), bytes(100)),
        "idx/float-type.idx": bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + bytes(4),
        "idx/html-page.idx": b"<!DOCTYPE html><html><body>Not Found</body></html>",
        # model.safetensors
        "weights/zero-length.safetensors": b"",
        "weights/header-length-absurd.safetensors": struct.pack("<Q", 2**63) + b"{}",
        "weights/header-not-json.safetensors": _safetensors(b"not json at all"),
        "weights/offsets-past-the-end.safetensors": _safetensors(
            {"layers.conv2d.weight": {"dtype": "F32", "shape": [32, 1, 3, 3],
                                      "data_offsets": [0, 10**12]}}),
        "weights/shape-absurd.safetensors": _safetensors(
            {"layers.conv2d.weight": {"dtype": "F32", "shape": [2**40, 2**40],
                                      "data_offsets": [0, 16]}}, bytes(16)),
        "weights/pickle-payload.safetensors": payload,
        "weights/torch-zip-payload.safetensors": _torch_zip(payload),
        "weights/png-polyglot.safetensors": PNG + _safetensors({}),
        # model.json
        "json/zero-length.json": b"",
        "json/deep-nesting.json": b"[" * 100_000,
        "json/long-integer.json": b'{"architecture": ' + b"9" * 5000 + b"}",
        "json/not-utf8.json": b'{"architecture": "\xff\xfe"}',
        "json/absurd-layers.json": json.dumps({"architecture": {
            "name": "seed", "input_shape": [1024, 1024, 1024],
            "layers": [{"type": "Conv2D", "filters": 4096, "kernel_size": 1},
                       {"type": "Flatten"}, {"type": "Dense", "units": 4096}]}}).encode(),
        "json/unknown-architecture.json": json.dumps({"architecture": {
            "name": "vgg", "input_shape": [28, 28, 1], "layers": [{"type": "Flatten"}]}}).encode(),
        # found by the fuzzer: both once escaped as TypeError
        "json/layer-type-is-a-list.json": json.dumps({"architecture": {
            "name": "seed", "input_shape": [28, 28, 1], "layers": [{"type": []}]}}).encode(),
        "json/layer-missing-field.json": json.dumps({"architecture": {
            "name": "seed", "input_shape": [28, 28, 1], "layers": [{"type": "Conv2D"}]}}).encode(),
        "json/python-object.json": b'{"architecture": {"__class__": "os.system"}}',
        # checkpoint/state.pt
        "state/zero-length.pt": b"",
        "state/pickle-payload.pt": payload,
        "state/torch-zip-payload.pt": _torch_zip(payload),
        "state/png-zip-polyglot.pt": PNG + _torch_zip(payload),
        "state/truncated-zip.pt": _torch_zip(pickle.dumps({"epoch": 1}))[:60],
        "state/html-page.pt": b"<!DOCTYPE html><html></html>",
        # history.csv
        "history/nan-epoch.csv": b"epoch,loss,accuracy\nnan,0.5,0.9\n",
        "history/no-epoch-column.csv": b"loss,accuracy\n0.5,0.9\n",
        "history/text-value.csv": b"epoch,loss,accuracy\n1,x,0.9\n",
        "history/epoch-zero.csv": b"epoch,loss,accuracy\n0,0.5,0.9\n",
        "history/infinite-loss.csv": b"epoch,loss,accuracy\n1,inf,0.9\n",
        "history/short-row.csv": b"epoch,loss,accuracy\n1,0.5\n",
        "history/not-utf8.csv": b"epoch,loss,accuracy\n1,\xff\xfe,0.9\n",
        "history/nul-bytes.csv": b"epoch,loss,accuracy\n1,0.5\x00,0.9\n",
    }


if __name__ == "__main__":
    for name, raw in corpus().items():
        (HERE / name).parent.mkdir(parents=True, exist_ok=True)
        (HERE / name).write_bytes(raw)
    print(f"wrote {len(corpus())} files under {HERE}")
