"""The page served by `mnist-cnn serve`, in a real browser: draw digits with the mouse, see
the prediction (computed in the browser: no /api/predict while drawing), the bars and the
feature maps; photos go to the server. Debian's Chromium through Python Playwright;
screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from browser_kit import (
    ARTIFACTS,
    MARKS,
    SIZES,
    assert_every_layer_responds,
    blank_pictures,
    draw,
    expect_label,
    launch,
    picture,
)

pytestmark = MARKS


@pytest.fixture(scope="module")
def server(trained_run):
    from mnist_cnn.predict import Predictor
    from mnist_cnn.serve import create_app
    from server_kit import background_server

    with background_server(create_app(Predictor.from_run(trained_run))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(params=SIZES, ids=lambda p: p[0])
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


@pytest.mark.parametrize("digit", ["1", "7", "0"])
def test_drawn_digit_is_recognised_in_the_browser(page, digit):
    empty = blank_pictures(page)  # nothing drawn yet
    draw(page, digit)
    expect_label(page, digit)
    bars = page.locator("#bars li")
    assert bars.count() == 10
    assert page.locator("#bars li.top .digit").text_content() == digit
    widths = [page.locator("#bars li .fill").nth(d).bounding_box()["width"] for d in range(10)]
    track = page.locator("#bars li.top .track").bounding_box()["width"]
    assert max(widths) == widths[int(digit)] > 0.3 * track  # the longest bar is the answer
    assert "sure it is a " + digit in page.locator("#confidence").text_content()
    assert_every_layer_responds(page, empty)
    assert "(None, 26, 26, 32)" in page.locator("[data-name=conv2d]").text_content()
    assert picture(page.locator("#input28")).std() > 20
    assert any(u.endswith("/model.js") for u in page.requests)
    assert not [u for u in page.requests if "/api/" in u], "the server was asked to predict"
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
    assert any(u.endswith("/api/predict") for u in page.requests)  # photos: the server's job


def test_no_digit_message(page, tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (300, 300), 255).save(path)
    page.locator("#upload").set_input_files(str(path))
    expect_label(page, "–")
    assert "no digit found" in page.locator("#confidence").text_content()
