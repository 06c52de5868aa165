"""What the browser tests share: Debian's Chromium through Python Playwright, mouse strokes
for digits, pictures of page elements, and the page's own pipeline called from a test."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SIZES = [("desktop", 1280, 900, False), ("phone", 390, 844, True)]  # name, width, height, touch
# Strokes in fractions of the pad: (x, y) points of each stroke.
STROKES = {
    "1": [[(0.5, 0.15), (0.48, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],
    "0": [[(0.5, 0.15), (0.32, 0.3), (0.3, 0.65), (0.5, 0.85), (0.68, 0.65), (0.68, 0.3),
           (0.5, 0.15)]],
}
MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
                       " (apt-get install chromium; .ci/run installs it)"),
]
# Every digit (28x28 bytes) through the page's pipeline: preprocessing, network, pictures.
CLASSIFY = """(digits) => digits.map((d) => {
    const image = new ImageData(28, 28);
    d.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
    return mnistPage.classify(image);
})"""


# Everything the engine must get right beyond the lesson's network: strides, Keras' 'same'
# padding (asymmetric here), a non-square kernel, average pooling over real cells, max pooling
# with -inf padding, batch normalization on maps and on a vector, dropout, no bias, sigmoid
# and tanh; and a convolution over 8 input channels (the page's per-channel arithmetic).
CUSTOM = [
    {"type": "Conv2D", "filters": 8, "kernel_size": [5, 4], "strides": 2, "padding": "same",
     "activation": "relu"},
    {"type": "BatchNormalization"},
    {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
    {"type": "Conv2D", "filters": 6, "kernel_size": 3, "strides": [1, 2], "activation": "tanh",
     "use_bias": False},
    {"type": "MaxPooling2D", "pool_size": 2, "strides": 1, "padding": "same"},
    {"type": "Flatten"},
    {"type": "Dropout", "rate": 0.5},
    {"type": "Dense", "units": 16, "activation": "sigmoid"},
    {"type": "BatchNormalization"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]


def make_custom_run(run: Path) -> Path:
    """The CUSTOM network saved as a run, with random weights, and moving statistics that are
    not the identity (a fresh BatchNormalization's mean 0, variance 1 would hide a mistake)."""
    import torch

    from mnist_cnn.checkpoint import save_model
    from mnist_cnn.model import Architecture, build_model

    arch = Architecture.from_dict({"name": "custom", "input_shape": [28, 28, 1],
                                   "layers": CUSTOM})
    model = build_model(arch, seed=0)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("gamma", "moving_variance")):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif name.endswith(("beta", "moving_mean")):
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=generator))
    save_model(run, model, {"dataset": "mnist"})
    return run


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def draw(page, digit: str) -> None:
    """Draw one of STROKES on the pad with the mouse."""
    page.locator("#pad").scroll_into_view_if_needed()
    box = page.locator("#pad").bounding_box()
    x0, y0, side = box["x"], box["y"], box["width"]
    for stroke in STROKES[digit]:
        page.mouse.move(x0 + stroke[0][0] * side, y0 + stroke[0][1] * side)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(x0 + x * side, y0 + y * side, steps=8)
        page.mouse.up()


def picture(locator) -> np.ndarray:
    """A grey-level screenshot of one element."""
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("L"), dtype=float)


def expect_label(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#label")).to_have_text(text, timeout=10_000)


def layer_names(page) -> list[str]:
    return page.evaluate("mnistPage.model.layers.map((L) => L.name)")


def assert_every_layer_responds(page, empty: dict[str, float]) -> None:
    """Each layer's card shows a picture that differs from the blank one (`empty`: each
    card's picture's spread before anything was drawn)."""
    for name in layer_names(page):
        card = page.locator(f"[data-name={name}]")
        assert name in card.locator("figcaption").text_content()
        view = card.locator("canvas, ol")
        assert picture(view).std() > empty[name] + 10, f"{name} shows no response"


def blank_pictures(page) -> dict[str, float]:
    return {name: picture(page.locator(f"[data-name={name}]").locator("canvas, ol")).std()
            for name in layer_names(page)}


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll `expression` in the page until it is true (the page's CSP forbids the `eval`
    behind Playwright's wait_for_function polling)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def click_map(page, layer: str, shape: tuple[int, ...], cell: int, y: int, x: int) -> None:
    """Click pixel (y, x) of map `cell` in a layer's card, located from the documented
    layout alone: maps of shape (C, H, W) in rows of min(8, C), one canvas pixel apart."""
    channels, h, w = shape
    cols = min(8, channels)
    canvas = page.locator(f"[data-name={layer}] canvas")
    canvas.evaluate("(c) => c.scrollIntoView({block: 'center'})")  # every pixel in view
    box = canvas.bounding_box()
    scale = box["width"] / canvas.evaluate("(c) => c.width")
    assert scale > 1, "a map pixel is smaller than a CSS pixel: choose a larger viewport"
    px, py = (cell % cols) * (w + 1) + x, (cell // cols) * (h + 1) + y

    def inside(start: float) -> float:  # a click lands on whole CSS pixels: one in the span
        whole = math.ceil(start + 1e-6)
        return whole if whole < start + scale - 1e-6 else start + scale / 2

    page.mouse.click(inside(box["x"] + px * scale), inside(box["y"] + py * scale))


def open_page(browser, url: str, size=SIZES[0], locale: str = "en-US"):
    """A page at `url` in a fresh context (viewport, touch, locale), its problems recorded,
    every request other than file: and the page's own server refused."""
    name, width, height, touch = size
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                  device_scale_factor=2 if touch else 1, has_touch=touch)
    pg = context.new_page()
    pg.problems, pg.blocked = [], []
    origin = url.split("/index.html")[0] if url.startswith("file:") else url.rstrip("/")

    def block(route):
        if route.request.url.startswith(("file:", origin, "data:")):
            return route.continue_()
        pg.blocked.append(route.request.url)
        return route.abort()

    context.route("**/*", block)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(m.text))
    pg.goto(url)
    wait_until(pg, "window.mnistPage && mnistPage.ready === true")
    pg.shot_name = name
    return context, pg
