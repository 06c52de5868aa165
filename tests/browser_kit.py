"""What the browser tests share: Debian's Chromium through Python Playwright, mouse strokes
for digits, pictures of page elements, and the page's own pipeline called from a test."""

from __future__ import annotations

import io
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
