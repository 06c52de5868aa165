"""serve.py: the JSON API, its limits at the boundary and one past, and bad requests."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import warnings
import zlib
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_cnn import preprocess
from mnist_cnn.model import build_model
from mnist_cnn.predict import Predictor
from mnist_cnn.serve import MAX_BODY_BYTES, create_app
from server_kit import background_server

with warnings.catch_warnings():  # starlette's note about httpx's successor
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LIMIT = MAX_BODY_BYTES


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def seven(side: int = 200) -> Image.Image:
    """A drawn 7, dark ink on white, as a canvas or a photo gives it."""
    img = Image.new("L", (side, side), 255)
    s = side / 200
    ImageDraw.Draw(img).line([(50 * s, 40 * s), (150 * s, 40 * s), (90 * s, 170 * s)],
                             fill=0, width=max(2, int(14 * s)))
    return img


def bomb_png(width: int, height: int) -> bytes:
    """A few kilobytes that decode to width*height pixels."""
    buf = io.BytesIO()
    Image.new("1", (width, height), 0).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def app():
    # An untrained model answers every limit test exactly as a trained one would.
    return create_app(Predictor(build_model("lesson", seed=0), {"metrics": {"test_accuracy": 0}}))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url="http://127.0.0.1") as c:  # a Host the server answers for
        yield c


def assert_error(response, status: int, words: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and words.lower() in body["error"].lower()
    assert "Traceback" not in body["error"]


def padded_json(payload: dict, size: int) -> bytes:
    """`payload` as JSON, padded with trailing spaces to exactly `size` bytes."""
    body = json.dumps(payload).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


# --- answers ----------------------------------------------------------------------------


def test_pixels_answer_label_probabilities_and_input(client):
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 12:16] = 255  # MNIST-style: passes through unchanged
    r = client.post("/api/predict", json={"pixels": img.tolist()})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"label", "probabilities", "input"}
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["label"] == int(np.argmax(body["probabilities"]))
    assert np.array_equal(np.array(body["input"]), img)


def test_pixels_in_0_1_equal_pixels_in_0_255(client):
    img = np.asarray(seven(28), dtype=np.float64)
    a = client.post("/api/predict", json={"pixels": img.tolist()}).json()
    b = client.post("/api/predict", json={"pixels": (img / 255).tolist()}).json()
    assert a["input"] == b["input"]


def test_activations_on_request_have_every_layer(client):
    for r in (client.post("/api/predict?activations=1", content=png(seven()),
                          headers={"content-type": "image/png"}),
              client.post("/api/predict", json={"image": base64.b64encode(png(seven())).decode(),
                                                "activations": True})):
        assert r.status_code == 200, r.text
        layers = r.json()["activations"]
        assert [a["name"] for a in layers] == ["conv2d", "max_pooling2d", "conv2d_1",
                                               "max_pooling2d_1", "conv2d_2", "flatten",
                                               "dense", "dense_1"]
        for a in layers:
            shape = a["shape"]
            expected = [shape[2], shape[0], shape[1]] if len(shape) == 3 else shape  # (C, H, W)
            assert list(np.array(a["values"]).shape) == expected
        assert np.allclose(layers[-1]["values"], r.json()["probabilities"], atol=1e-3)


def test_every_way_to_send_an_image_gives_the_same_answer(client):
    data = png(seven())
    answers = [
        client.post("/api/predict", files={"file": ("seven.png", data, "image/png")}),
        client.post("/api/predict", content=data, headers={"content-type": "image/png"}),
        client.post("/api/predict", json={"image": base64.b64encode(data).decode()}),
        client.post("/api/predict",
                    json={"image": "data:image/png;base64," + base64.b64encode(data).decode()}),
    ]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({json.dumps(a.json()["input"]) for a in answers}) == 1


def test_blank_drawing_is_no_digit_found(client):
    assert_error(client.post("/api/predict", json={"pixels": [[0] * 28] * 28}), 422,
                 "no digit found")
    white = png(Image.new("L", (280, 280), 255))
    assert_error(client.post("/api/predict", files={"file": ("b.png", white, "image/png")}),
                 422, "no digit found")


def test_model_health_ready_docs(client):
    model = client.get("/api/model").json()
    assert "Total params: 93,322" in model["summary"]
    assert np.array(model["conv1_filters"]).shape == (32, 3, 3)
    assert [layer["shape"] for layer in model["layers"][:2]] == [[26, 26, 32], [13, 13, 32]]
    assert model["metrics"] == {"test_accuracy": 0}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/predict" in docs.text
    urls = re.findall(r"https?://[^\s'\"<]+", docs.text)
    assert urls and all(u.startswith("http://127.0.0.1/") for u in urls)  # this server only
    assert "<script" not in docs.text and "<link" not in docs.text  # self-contained
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


def test_page_and_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "https://" not in r.text and "http://" not in r.text


# --- the body limit: boundary and one past ----------------------------------------------


@pytest.mark.parametrize("kind", ["json", "raw"])
def test_body_at_the_limit_is_served_and_one_byte_more_is_413(client, kind):
    data = png(seven())
    if kind == "json":
        body = padded_json({"image": base64.b64encode(data).decode()}, LIMIT)
        ctype = "application/json"
    else:
        body = data + b"\0" * (LIMIT - len(data))  # PNG readers ignore bytes after IEND
        ctype = "image/png"
    assert len(body) == LIMIT
    assert client.post("/api/predict", content=body, headers={"content-type": ctype}
                       ).status_code == 200
    assert_error(client.post("/api/predict", content=body + b" ",
                             headers={"content-type": ctype}), 413, "too large")


def test_streamed_body_without_length_is_counted(client):
    def chunks():
        for _ in range(3):
            yield b" " * (LIMIT // 2)  # no Content-Length: chunked, 1.5x the limit

    assert_error(client.post("/api/predict", content=chunks(),
                             headers={"content-type": "application/json"}), 413, "too large")


def test_real_server_refuses_by_content_length_and_by_streamed_size(app):
    with background_server(app) as url:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("POST", "/api/predict", body=b"x",
                     headers={"Content-Type": "image/png", "Content-Length": str(LIMIT + 1)})
        r = conn.getresponse()
        assert r.status == 413 and "too large" in json.loads(r.read())["error"]
        conn.close()
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("POST", "/api/predict", body=iter([b"\0" * 65536] * 40),  # 2.5 MB
                     headers={"Content-Type": "image/png"}, encode_chunked=True)
        r = conn.getresponse()
        assert r.status == 413 and "too large" in json.loads(r.read())["error"]
        conn.close()


# --- the pixel cap and decompression bombs ----------------------------------------------


def test_pixel_cap_boundary(client, monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", 200 * 200)
    ok = client.post("/api/predict", content=png(seven(200)), headers={"content-type": "image/png"})
    assert ok.status_code == 200
    over = seven(200).resize((200, 201))
    assert_error(client.post("/api/predict", content=png(over),
                             headers={"content-type": "image/png"}), 413, "too large")


@pytest.mark.parametrize("how", ["multipart", "raw", "base64"])
def test_decompression_bomb_png_is_413(client, how):
    bomb = bomb_png(6000, 4001)  # one row over MAX_IMAGE_PIXELS, in a few kB
    if how == "multipart":
        r = client.post("/api/predict", files={"file": ("bomb.png", bomb, "image/png")})
    elif how == "raw":
        r = client.post("/api/predict", content=bomb, headers={"content-type": "image/png"})
    else:
        r = client.post("/api/predict", json={"image": base64.b64encode(bomb).decode()})
    assert_error(r, 413, "too large")


def test_huge_declared_dimensions_are_413(client):
    data = bytearray(png(seven(20)))
    data[16:24] = (60000).to_bytes(4, "big") * 2  # IHDR claims 60000 x 60000 pixels ...
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # ... with a valid CRC
    assert_error(client.post("/api/predict", content=bytes(data),
                             headers={"content-type": "image/png"}), 413, "too large")


# --- bad requests ----------------------------------------------------------------------


def test_non_image_renamed_png_is_415(client):
    script = b"#!/bin/sh\necho not an image\n"
    assert_error(client.post("/api/predict", files={"file": ("digit.png", script, "image/png")}),
                 415, "not an image")


def test_truncated_png_is_400(client):
    data = png(seven())
    assert_error(client.post("/api/predict", content=data[: len(data) // 2],
                             headers={"content-type": "image/png"}), 400, "cannot decode")


@pytest.mark.parametrize("pixels", [
    [[0] * 28] * 27, [[0] * 27] * 28, [[[0] * 28] * 28], [0] * 784, "zeros", None,
    [[0] * 28] * 27 + [[0] * 27], [["1"] * 28] * 28, [[True] * 28] * 28,
    [[-1] * 28] * 28, [[256] * 28] * 28,
])
def test_wrong_pixels_are_422(client, pixels):
    assert_error(client.post("/api/predict", json={"pixels": pixels}), 422, "28 rows")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_pixels_are_422(client, number):
    body = '{"pixels": [' + ",".join(["[" + ",".join([number] * 28) + "]"] * 28) + "]}"
    assert_error(client.post("/api/predict", content=body,
                             headers={"content-type": "application/json"}), 422, "28 rows")


@pytest.mark.parametrize("payload, words", [
    ({"image": "not base64!!"}, "base64"),
    ({"image": "QUJ"}, "base64"),  # bad padding
    ({"image": 42}, "base64 string"),
    ({"image": ""}, "not an image"),
    ({"image": base64.b64encode(b"GIF89a garbage").decode()}, "cannot decode"),
    ({}, '"pixels" or "image"'),
    ({"pixels": [[0] * 28] * 28, "image": "AAAA"}, '"pixels" or "image"'),
    ({"pixels": [[0] * 28] * 28, "activations": "yes"}, "true or false"),
])
def test_bad_json_fields_are_4xx(client, payload, words):
    r = client.post("/api/predict", json=payload)
    assert 400 <= r.status_code < 500
    assert_error(r, r.status_code, words)


@pytest.mark.parametrize("body, ctype, status", [
    (b"{", "application/json", 400),
    (b"", "application/json", 400),
    (b"\xff\xfe\x00garbage", "application/json", 400),
    (b"[1, 2, 3]", "application/json", 400),
    (b"null", "application/json", 400),
    (b"[" * 200_000, "application/json", 400),  # nesting deep enough to break a parser
    (b"\x00" * 1000, "application/octet-stream", 415),
    (b"", "image/png", 415),
    (b"hello", "text/plain", 415),
    (b"hello", "", 415),
    (b"--xyz\r\nbroken", "multipart/form-data; boundary=xyz", 400),
    (b"--xyz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--xyz--\r\n",
     "multipart/form-data; boundary=xyz", 400),
    (b"abc", "multipart/form-data", 400),  # no boundary at all
])
def test_garbage_bodies_are_4xx_json(client, body, ctype, status):
    headers = {"content-type": ctype} if ctype else {}
    assert_error(client.post("/api/predict", content=body, headers=headers), status)


def test_routing_errors_are_json(client):
    assert_error(client.get("/nope"), 404, "not found")
    assert_error(client.get("/api/predict"), 405, "not allowed")
    assert_error(client.post("/api/predict?activations=perhaps", json={"pixels": [[0] * 28] * 28}),
                 422, "activations")


# --- with a trained model ---------------------------------------------------------------


@pytest.mark.slow
def test_trained_model_reads_mnist_and_drawings(trained_run, mnist):
    client = TestClient(create_app(Predictor.from_run(trained_run)), base_url="http://localhost")
    (_, _), (x_test, y_test) = mnist
    right = sum(client.post("/api/predict", json={"pixels": x.tolist()}).json()["label"] == y
                for x, y in zip(x_test[:50], y_test[:50], strict=True))
    assert right >= 48
    r = client.post("/api/predict", files={"file": ("seven.jpg", png(seven(600)), "image/jpeg")})
    assert r.json()["label"] == 7
    assert client.get("/api/model").json()["meta"]["dataset"] == "mnist"


# --- large images: reduced while decoding, read alike; the others exactly as predict does --


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def seven_on(width: int, height: int, mode: str = "L", page=255, ink=0) -> Image.Image:
    """A drawn 7 across the middle of a width x height page."""
    img = Image.new(mode, (width, height), page)
    s, left = min(width, height) / 200, (width - min(width, height)) / 2
    ImageDraw.Draw(img).line([(left + 50 * s, 40 * s), (left + 150 * s, 40 * s),
                              (left + 90 * s, 170 * s)], fill=ink, width=max(2, int(14 * s)))
    return img


def served_input(client, data: bytes) -> np.ndarray:
    r = client.post("/api/predict", content=data, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    return np.array(r.json()["input"])


@pytest.mark.parametrize("data", [
    png(seven(200)),
    png(seven_on(1024, 768, "RGBA", (0, 0, 0, 0), (0, 0, 0, 255))),  # ink on a transparent page
    encoded(seven_on(1024, 768, "RGB", (230, 225, 210), (20, 20, 40)), "JPEG", quality=85),
    png(seven_on(1024, 1024)),  # the largest prepared unreduced (the page's largest upload)
], ids=["png-200", "rgba-1024", "jpeg-1024", "png-1024-square"])
def test_images_up_to_the_work_size_are_prepared_exactly_as_predict_does(client, data):
    from mnist_cnn.serve_work import WORK_PIXELS, declared_pixels

    assert declared_pixels(data) <= WORK_PIXELS
    expected = preprocess.to_mnist(preprocess.decode_image(data))
    assert np.array_equal(served_input(client, data), expected)


def test_large_images_are_reduced_yet_read_alike(client):
    """Over WORK_PIXELS the server reduces while decoding; the 28x28 digit it sees stays
    within a grey level, on average, of the full-size one (EXIF rotation kept)."""
    from mnist_cnn.serve_work import WORK_PIXELS, decode_reduced

    rotated = Image.Exif()
    rotated[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    cases = [png(seven_on(3000, 3000)),
             png(seven_on(4000, 3000, "RGBA", (0, 0, 0, 0), (255, 255, 255, 255))),
             encoded(seven_on(4000, 3000, "RGB", (230, 225, 210), (20, 20, 40)), "JPEG",
                     exif=rotated.tobytes()),
             encoded(seven_on(3000, 2000).convert("P"), "GIF"),
             png(seven_on(5000, 4000).convert("1"))]
    for data in cases:
        reduced = decode_reduced(data, WORK_PIXELS)
        assert reduced.size[0] * reduced.size[1] <= WORK_PIXELS
        assert max(reduced.size) >= preprocess.WORK_SIDE  # preprocess still has detail to use
        full = preprocess.to_mnist(preprocess.decode_image(data)).astype(float)
        seen = served_input(client, data).astype(float)
        assert np.abs(seen - full).mean() < 1.5
        assert np.corrcoef(seen.ravel(), full.ravel())[0, 1] > 0.98


def test_a_large_jpeg_decodes_at_a_reduced_scale():
    from mnist_cnn.serve_work import WORK_PIXELS, decode_reduced

    data = encoded(seven_on(6000, 4000, "RGB"), "JPEG")
    # 24 MP needs a factor of 5: the JPEG decodes at 1/4 (1500x1000), then halves; decoded
    # whole and reduced by 5 it would be 1200x800.
    assert decode_reduced(data, WORK_PIXELS).size == (750, 500)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "I", "F"])
def test_reducing_band_by_band_equals_reducing_the_whole(mode):
    from mnist_cnn.serve_work import _reduce, _reducible

    rng = np.random.default_rng(0)
    for width, height, factor in [(6001, 403, 4), (1000, 777, 3), (50, 901, 5)]:
        img = Image.fromarray(rng.integers(0, 256, (height, width, 4), np.uint8)).convert(mode)
        whole = _reducible(img).reduce(factor)
        banded = _reduce(img, factor)
        assert (banded.mode, banded.size) == (whole.mode, whole.size)
        assert np.array_equal(np.asarray(banded), np.asarray(whole))
