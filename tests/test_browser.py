"""The page in a real browser: draw digits with the mouse, see the prediction, the bars and
the feature maps. Debian's Chromium through Python Playwright; screenshots go to
test-artifacts/ for a person to look at."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
# Strokes in fractions of the pad: (x, y) points of each stroke.
STROKES = {
    "1": [[(0.5, 0.15), (0.48, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],
    "0": [[(0.5, 0.15), (0.32, 0.3), (0.3, 0.65), (0.5, 0.85), (0.68, 0.65), (0.68, 0.3),
           (0.5, 0.15)]],
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
                       " (apt-get install chromium; .ci/run installs it)"),
]


@pytest.fixture(scope="module")
def server(trained_run):
    from mnist_cnn.predict import Predictor
    from mnist_cnn.serve import background_server, create_app

    with background_server(create_app(Predictor.from_run(trained_run))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(params=[("desktop", 1280, 900, False), ("phone", 390, 844, True)],
                ids=lambda p: p[0])
def page(request, browser, server):
    name, width, height, touch = request.param
    context = browser.new_context(viewport={"width": width, "height": height},
                                  device_scale_factor=2 if touch else 1, has_touch=touch)
    pg = context.new_page()
    pg.problems, pg.requests = [], []
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and "status of 422" not in m.text
          and pg.problems.append(m.text))  # a 422 "no digit found" is an answer, not a fault
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto(server + "/")
    pg.wait_for_selector("[data-name=conv2d] canvas")
    pg.shot_name = name
    yield pg
    context.close()
    assert all(u.startswith(server) or u.startswith("data:") for u in pg.requests), pg.requests
    assert pg.problems == []


def draw(page, digit: str) -> None:
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
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("L"), dtype=float)


def expect_label(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#label")).to_have_text(text, timeout=10_000)


@pytest.mark.parametrize("digit", ["1", "7", "0"])
def test_drawn_digit_is_recognised_with_bars_and_maps(page, digit):
    empty = picture(page.locator("[data-name=conv2d] canvas")).std()  # nothing drawn yet
    draw(page, digit)
    expect_label(page, digit)
    bars = page.locator("#bars li")
    assert bars.count() == 10
    assert page.locator("#bars li.top .digit").text_content() == digit
    widths = [page.locator("#bars li .fill").nth(d).bounding_box()["width"] for d in range(10)]
    track = page.locator("#bars li.top .track").bounding_box()["width"]
    assert max(widths) == widths[int(digit)] > 0.3 * track  # the longest bar is the answer
    assert "sure it is a " + digit in page.locator("#confidence").text_content()
    for layer in ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2",
                  "flatten", "dense"):
        card = page.locator(f"[data-name={layer}]")
        assert layer in card.locator("figcaption").text_content()
        assert picture(card.locator("canvas")).std() > empty + 10, f"{layer} shows no response"
    assert "(None, 26, 26, 32)" in page.locator("[data-name=conv2d]").text_content()
    assert picture(page.locator("#input28")).std() > 20
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browser-{page.shot_name}-{digit}.png"), full_page=True)


def test_keyboard_undo_clear_and_example(page):
    empty = picture(page.locator("[data-name=conv2d] canvas")).std()
    draw(page, "1")
    expect_label(page, "1")
    page.locator("#undo").focus()
    page.keyboard.press("Enter")  # the Undo button, from the keyboard
    expect_label(page, "?")
    page.keyboard.press("e")  # an example digit (the first is a 0)
    expect_label(page, "0")
    page.keyboard.press("Delete")
    expect_label(page, "?")
    assert picture(page.locator("[data-name=conv2d] canvas")).std() < empty + 1  # blank again


def test_photo_upload(page, tmp_path):
    photo = Image.new("RGB", (900, 700), (235, 230, 215))  # paper, a shadow, a pen 7
    ImageDraw.Draw(photo).rectangle([0, 0, 300, 700], fill=(190, 186, 175))
    ImageDraw.Draw(photo).line([(380, 200), (580, 200), (450, 520)], fill=(30, 30, 60), width=18)
    path = tmp_path / "seven.jpg"
    photo.save(path, quality=90)
    page.locator("#upload").set_input_files(str(path))
    expect_label(page, "7")


def test_no_digit_message(page, tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (300, 300), 255).save(path)
    page.locator("#upload").set_input_files(str(path))
    expect_label(page, "–")
    assert "no digit found" in page.locator("#confidence").text_content()
