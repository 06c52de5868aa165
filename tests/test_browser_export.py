"""The exported page (`export_web`) opened from file:// in Debian's Chromium with the network
blocked: the network runs in the browser and agrees with torch, drawn digits are recognised,
every layer's maps are drawn, at desktop and phone sizes; the browser's preprocessing agrees
with the server's on drawn digits."""

from __future__ import annotations

import base64
import json
import shutil
import statistics

import numpy as np
import pytest

from browser_kit import (
    ARTIFACTS,
    CLASSIFY,
    MARKS,
    SIZES,
    assert_every_layer_responds,
    blank_pictures,
    draw,
    expect_label,
    launch,
    layer_names,
    make_custom_run,
)

pytestmark = MARKS
AGREEMENT = 1e-4  # probabilities, browser vs torch
N_DIGITS = 100


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    from mnist_cnn.export_web import export_web

    return export_web(trained_run, tmp_path_factory.mktemp("web") / "site")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def open_offline(browser, folder, size):
    """The page from file:// in a context where every other request is refused and kept."""
    name, width, height, touch = size
    context = browser.new_context(viewport={"width": width, "height": height},
                                  device_scale_factor=2 if touch else 1, has_touch=touch)
    pg = context.new_page()
    pg.problems, pg.requests, pg.blocked = [], [], []

    def block(route):
        if route.request.url.startswith("file:"):
            return route.continue_()
        pg.blocked.append(route.request.url)
        return route.abort()

    context.route("**/*", block)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(m.text))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto((folder / "index.html").as_uri())
    pg.wait_for_function("window.mnistPage && mnistPage.ready", timeout=15_000)
    pg.shot_name = name
    return context, pg


@pytest.fixture(params=SIZES, ids=lambda p: p[0])
def page(request, browser, exported):
    context, pg = open_offline(browser, exported, request.param)
    yield pg
    context.close()
    assert pg.blocked == [], f"the page tried to reach the network: {pg.blocked}"
    assert all(u.startswith(("file:", "data:")) for u in pg.requests), pg.requests
    assert pg.problems == []


def test_mnist_digits_agree_with_torch(page, mnist, trained_run):
    from mnist_cnn.predict import Predictor

    digits = mnist[1][0][:N_DIGITS]
    results = page.evaluate(CLASSIFY, [d.ravel().tolist() for d in digits])
    seen = np.array([r["input"] for r in results], dtype=np.uint8)
    assert np.array_equal(seen, digits.reshape(N_DIGITS, -1))  # MNIST digits pass unchanged
    got = np.array([r["probabilities"] for r in results])
    want = Predictor.from_run(trained_run).probabilities(digits)
    assert np.abs(got - want).max() < AGREEMENT
    assert (got.argmax(1) == mnist[1][1][:N_DIGITS]).mean() >= 0.95
    ms = page.evaluate("mnistPage.forwardMs")  # recorded for docs/BENCHMARKS.md, not asserted
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"web-forward-{page.shot_name}.json").write_text(json.dumps(
        {"forward_ms_median": statistics.median(ms), "runs": len(ms)}) + "\n")


@pytest.mark.parametrize("digit", ["7", "0"])
def test_a_drawn_digit_is_recognised_offline(page, digit):
    empty = blank_pictures(page)
    draw(page, digit)
    expect_label(page, digit)
    assert "sure it is a " + digit in page.locator("#confidence").text_content()
    assert_every_layer_responds(page, empty)
    assert page.locator("label[for=upload]").is_hidden()  # photos need the server
    assert page.locator("#photo-note").is_visible()
    assert page.locator("footer a").is_hidden()  # no API to link to
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"export-{page.shot_name}-{digit}.png"), full_page=True)


def test_the_summary_fits_and_cards_align(page):
    pre = page.locator("#summary")
    assert pre.evaluate("(e) => e.scrollWidth <= e.clientWidth"), "the summary is cut off"
    assert "Param #" in pre.text_content()
    tops = page.evaluate("""() => [...document.querySelectorAll('.layer')].map((card) => [
        Math.round(card.getBoundingClientRect().top),
        Math.round(card.querySelector('canvas, ol').getBoundingClientRect().top)])""")
    rows: dict[int, set[int]] = {}
    for card_top, view_top in tops:
        rows.setdefault(card_top, set()).add(view_top)
    assert all(len(views) == 1 for views in rows.values()), rows  # one picture line per row


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    return make_custom_run(tmp_path_factory.mktemp("custom") / "run")


def test_a_custom_architecture_agrees_with_torch(browser, custom_run, tmp_path, mnist):
    from mnist_cnn.export_web import export_web
    from mnist_cnn.predict import Predictor

    context, pg = open_offline(browser, export_web(custom_run, tmp_path / "site"), SIZES[0])
    digits = mnist[1][0][:N_DIGITS]
    results = pg.evaluate(CLASSIFY, [d.ravel().tolist() for d in digits])
    names = layer_names(pg)
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "export-custom-architecture.png"), full_page=True)
    context.close()
    assert pg.problems == [] and pg.blocked == []
    predictor = Predictor.from_run(custom_run)
    got = np.array([r["probabilities"] for r in results])
    assert np.abs(got - predictor.probabilities(digits)).max() < AGREEMENT
    assert names == [o.name for o in predictor.activations(digits[0])]


PAD_PIXELS = """async () => {
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    const pad = document.getElementById('pad');
    const image = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height);
    return [pad.toDataURL('image/png'), Array.from(MnistPreprocess.toMnist(image))]; }"""


def test_browser_preprocessing_agrees_with_the_server(browser, exported, trained_run):
    from mnist_cnn.predict import Predictor
    from mnist_cnn.preprocess import decode_image, to_mnist

    predictor = Predictor.from_run(trained_run)
    context, pg = open_offline(browser, exported, SIZES[0])
    pairs = []
    for digit in ["1", "7", "0"]:
        pg.keyboard.press("Delete")
        draw(pg, digit)
        pairs.append(pg.evaluate(PAD_PIXELS))
    for _ in range(10):  # the Example button's ten digits
        pg.locator("#example").click()
        pairs.append(pg.evaluate(PAD_PIXELS))
    context.close()
    for png, in_browser in pairs:
        js = np.array(in_browser, dtype=np.uint8).reshape(28, 28)
        py = to_mnist(decode_image(base64.b64decode(png.partition(",")[2])))
        diff = np.abs(js.astype(int) - py)
        assert diff.mean() < 1.0 and (diff <= 2).mean() > 0.99, diff.max()
        labels = predictor.probabilities(np.stack([js, py])).argmax(1)
        assert labels[0] == labels[1]


def test_a_damaged_model_script_is_one_clear_message(browser, exported, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(exported, site)
    text = (site / "model.js").read_text(encoding="ascii")
    payload = json.loads(text[text.index("{"):text.rindex("}") + 1])
    payload["architecture"]["layers"][0]["filters"] += 1  # the weights no longer fit
    (site / "model.js").write_text("window.MNIST_MODEL = " + json.dumps(payload) + ";\n",
                                   encoding="ascii")
    context = browser.new_context()
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto((site / "index.html").as_uri())
    from playwright.sync_api import expect

    expect(pg.locator("#model-line")).to_contain_text(
        "could not load the model: layers.conv2d.weight is [32,1,3,3], expected [33,1,3,3]")
    assert errors == []
    context.close()
