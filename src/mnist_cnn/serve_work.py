"""From a request's body to its answer, off the event loop, with bounded memory.

The event loop only reads bodies and writes answers; everything that can take time (parsing
JSON, decoding an image, preparing the digit, inference, encoding the answer) runs in a
`Lane`: a few threads and a bounded queue, so a flood is answered 503 at once instead of
piling up. Images over WORK_PIXELS go to a lane of their own, one at a time, and are reduced
while decoding (JPEG at 1/2..1/8 scale, other formats by an integer box reduction right
after), so a 24-megapixel upload costs about its decoded size once, never the several copies
that preparing it at full size makes, and small requests never wait behind it. Images up to
WORK_PIXELS (the page sends at most 1024x1024) are prepared exactly as `mnist-cnn predict`
prepares them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from mnist_cnn.errors import ImageError, ImageTooLargeError
from mnist_cnn.predict import Predictor
from mnist_cnn.preprocess import (
    check_pixel_count,
    decode_image,
    pixels_to_uint8,
    sniff_format,
    to_mnist,
)
from mnist_cnn.serve_http import Limits, Refused

WORK_PIXELS = 1024 * 1024  # the page's largest upload; preparing it (RGBA) takes ~35 MB
BAND_BYTES = 4 * 1024 * 1024  # large images are reduced this much at a time
PIXELS_SHAPE = (28, 28)  # {"pixels": ...} is the network's own input size, nothing else
ROUND = 4  # decimals in activations: enough for a picture, a quarter of the bytes
_FLAT_MODES = {"1": "L", "P": "L", "I;16": "I", "I;16B": "I", "I;16L": "I", "I;16N": "I"}
# ... modes Image.reduce cannot average, and what they become first (alpha: "LA")


class Lane:
    """A thread pool that admits at most `threads + queue` jobs; more are refused with 503.
    Its threads start with the first job and stop on close() (an app can serve again)."""

    def __init__(self, name: str, threads: int, queue: int):
        self.name, self.threads, self.capacity = name, threads, threads + queue
        self.pool: ThreadPoolExecutor | None = None
        self.admitted = 0  # changed only on the event loop: no lock needed

    async def run(self, fn: Any, *args: Any) -> Any:
        """fn(*args) in a thread of this lane; Refused(503) when the lane is full."""
        if self.admitted >= self.capacity:
            raise Refused(503, f"server busy ({self.name}): try again in a moment")
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
        self.admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        finally:
            self.admitted -= 1

    def close(self) -> None:
        """Stop the threads (jobs not started are dropped); the next job starts new ones."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


@dataclass(frozen=True)
class _Large:
    """An image too large for the main lane: decoded in the large-image lane."""

    data: bytes
    activations: bool


class Work:
    """Answers /api/predict bodies for one model, in two bounded lanes."""

    def __init__(self, predictor: Predictor, limits: Limits):
        self.predictor = predictor
        self.main = Lane("requests", limits.threads, limits.queue)
        self.large = Lane("large images", 1, limits.large_image_queue)

    async def answer(self, kind: str, body: bytes, activations: bool) -> bytes:
        """The JSON answer (bytes) for a body of `kind` "json" or "image"."""
        first = await self.main.run(self._answer, kind, body, activations)
        if isinstance(first, _Large):
            return await self.large.run(self._answer_large, first)
        return first

    def close(self) -> None:
        """Stop both lanes' threads."""
        self.main.close()
        self.large.close()

    def _answer(self, kind: str, body: bytes, activations: bool) -> bytes | _Large:
        source, asked = from_json(body) if kind == "json" else (body, False)
        activations = activations or asked
        if isinstance(source, bytes):
            if declared_pixels(source) > WORK_PIXELS:
                return _Large(source, activations)
            source = decode_image(source)
        return self._predict(to_mnist(source), activations)

    def _answer_large(self, job: _Large) -> bytes:
        return self._predict(to_mnist(decode_reduced(job.data, WORK_PIXELS)), job.activations)

    def _predict(self, digit: np.ndarray, activations: bool) -> bytes:
        result = prediction(self.predictor, digit, activations)
        return json.dumps(result, separators=(",", ":"), allow_nan=False).encode()


def prediction(predictor: Predictor, digit: np.ndarray, activations: bool) -> dict:
    """The answer for one prepared (28, 28) digit."""
    probs = predictor.probabilities(digit[None])[0]
    result: dict[str, Any] = {
        "label": int(probs.argmax()),
        "probabilities": [round(float(p), 6) for p in probs],
        "input": digit.tolist(),
    }
    if activations:
        result["activations"] = [
            {"name": out.name, "kind": out.kind, "shape": list(out.shape),
             "values": np.round(out.values.astype(np.float64), ROUND).tolist()}
            for out in predictor.activations(digit)
        ]
    return result


# --- bodies -----------------------------------------------------------------------------


def from_json(body: bytes) -> tuple[np.ndarray | bytes, bool]:
    """{"pixels": 28x28} or {"image": base64 or a data: URL}, with optional "activations"."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise Refused(400, f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict) or ("pixels" in payload) == ("image" in payload):
        raise Refused(400, 'send an object with either "pixels" or "image"')
    asked = payload.get("activations", False)
    if not isinstance(asked, bool):
        raise Refused(400, '"activations" must be true or false')
    if "pixels" in payload:
        return pixels(payload["pixels"]), asked
    return base64_bytes(payload["image"]), asked


def pixels(value: Any) -> np.ndarray:
    """A 28x28 grid of numbers 0..255 (or 0..1) as uint8."""
    shape_error = Refused(422, '"pixels" must be 28 rows of 28 numbers, 0..255 or 0..1')
    if not isinstance(value, list) or len(value) != PIXELS_SHAPE[0]:
        raise shape_error
    if not all(isinstance(row, list) and len(row) == PIXELS_SHAPE[1] for row in value):
        raise shape_error
    # Checked as Python numbers first: an integer like 10**400 has no float to become;
    # NaN fails both comparisons; type() keeps out bool, a subclass of int.
    if not all(type(v) in (int, float) and 0 <= v <= 255 for row in value for v in row):
        raise shape_error
    return pixels_to_uint8(np.asarray(value, dtype=np.float64))


def base64_bytes(value: Any) -> bytes:
    """Bytes from base64 text, with or without a `data:image/...;base64,` prefix."""
    if not isinstance(value, str):
        raise Refused(400, '"image" must be a base64 string')
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, '"image" is not valid base64') from None


# --- large images -----------------------------------------------------------------------


def declared_pixels(data: bytes) -> int:
    """Width x height from the image's header, nothing decoded; 0 when the header cannot be
    read (decode_image then names the fault)."""
    try:
        with Image.open(io.BytesIO(data), formats=[sniff_format(data)]) as img:
            return img.size[0] * img.size[1]
    except Exception:  # any fault is named by decode_image, which reads it again
        return 0


def decode_reduced(data: bytes, max_pixels: int) -> Image.Image:
    """Like decode_image, for an image with more than `max_pixels` pixels: reduced by an
    integer factor to about `max_pixels` before anything else sees it. JPEG decodes at the
    reduced scale (draft); other formats are decoded, then box-reduced, so the peak memory
    is about one decoded copy (a 24-megapixel RGBA PNG: 96 MB) and a band."""
    fmt = sniff_format(data)
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
        check_pixel_count(*img.size)
        factor = math.ceil(math.sqrt(img.size[0] * img.size[1] / max_pixels))
        if fmt == "JPEG":
            img.draft(None, (img.size[0] // factor, img.size[1] // factor))
        img.seek(0)  # a GIF's or WebP's first frame
        img.load()
        img = _reduce(img, math.ceil(math.sqrt(img.size[0] * img.size[1] / max_pixels)))
        return ImageOps.exif_transpose(img) or img
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image too large: {exc}") from exc
    except Exception as exc:  # any failure on untrusted bytes is a bad image, not a bug
        raise ImageError(f"cannot decode the {fmt} image: {exc}") from exc


def _reduce(img: Image.Image, factor: int) -> Image.Image:
    """Image.reduce(factor), a band of rows at a time. Pillow reduces LA and RGBA through a
    premultiplied full-size copy, and modes it cannot average must be converted first; band
    by band, neither costs more than a band. Bands start at multiples of `factor`, so the
    result is the same as reducing the whole image."""
    if factor <= 1:
        return img
    width, height = img.size
    rows = factor * max(1, BAND_BYTES // (4 * width * factor))
    parts = [_reducible(img.crop((0, top, width, min(top + rows, height)))).reduce(factor)
             for top in range(0, height, rows)]
    out = Image.new(parts[0].mode, (parts[0].width, sum(part.height for part in parts)))
    for i, part in enumerate(parts):
        out.paste(part, (0, i * rows // factor))
    out.info = {k: v for k, v in img.info.items() if k != "transparency"}  # EXIF kept
    return out


def _reducible(img: Image.Image) -> Image.Image:
    """The image in a mode Image.reduce can average, transparency kept as an alpha band
    (preparing the digit needs it)."""
    if "transparency" in img.info or img.mode == "PA":
        return img.convert("RGBA" if img.mode == "RGB" else "LA")
    return img.convert(_FLAT_MODES[img.mode]) if img.mode in _FLAT_MODES else img
