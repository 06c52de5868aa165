"""The page in Korean and English, and how far it says to trust an answer, in Debian's Chromium:
the browser's language picks the page's, a switch changes it and is remembered; the Korean
page has no English left (beyond names of things) with the arithmetic panels open, served and
exported; the "not sure" line from `mnist-cnn report` is shown, or the page says plainly that
there is none (or that it belongs to other weights). Screenshots at desktop and phone sizes in
both languages with a map clicked go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import re
import shutil
import string

import pytest
import torch

from browser_kit import (
    ARTIFACTS,
    CLASSIFY,
    MARKS,
    SIZES,
    click_map,
    draw,
    launch,
    make_custom_run,
    open_page,
    wait_until,
)

pytestmark = MARKS
HANGUL = re.compile(r"[\uac00-\ud7a3]")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[._\-/'][A-Za-z0-9]+)*")
NOT_WORDS = re.compile(r"\d+x\d+")  # sizes such as 28x28
# Latin-script words a Korean reader sees as they are: names of things, keys, symbols.
ALLOWED = {
    "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dense", "Dropout",
    "BatchNormalization", "None",  # Keras' layer types and shapes, (None, 26, 26, 32)
    "ReLU", "softmax", "tanh", "same",  # activations and the 'same' padding option
    "mnist-cnn", "mnist", "fashion-mnist", "model.json", "API",  # the product, data, files
    "Esc", "Enter", "Delete", "Z", "E",  # keys
}
# Every visible text, aria-label and title outside translate="no" (program output, names).
VISIBLE_TEXTS = """() => {
  const texts = [document.title], seen = (el) => el.checkVisibility({ checkVisibilityCSS: true });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement, text = n.textContent.trim();
    if (text && !el.closest('[translate="no"], script, style') && seen(el)) texts.push(text);
  }
  for (const el of document.querySelectorAll('[aria-label], [title]')) {
    if (el.closest('[translate="no"]') || !seen(el)) continue;
    for (const a of ['aria-label', 'title']) if (el.getAttribute(a)) texts.push(el.getAttribute(a));
  }
  return texts; }"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def sites(written_report, trained_run, tmp_path_factory):
    """Exports: the lesson's run after `mnist-cnn report` (calibrated), a custom network with
    no report (uncalibrated), and the lesson's run retrained after its report (stale)."""
    from mnist_cnn import checkpoint
    from mnist_cnn.export_web import export_web

    root = tmp_path_factory.mktemp("i18n")
    stale = root / "stale-run"
    shutil.copytree(trained_run, stale)
    model, meta = checkpoint.load_model(stale)
    with torch.no_grad():
        model.layers["dense"].bias.add_(0.01)
    checkpoint.save_model(stale, model, meta)  # new weights, the old report's line
    runs = {"calibrated": trained_run, "stale": stale,
            "uncalibrated": make_custom_run(root / "custom-run")}
    return {name: export_web(run, root / name).joinpath("index.html").as_uri()
            for name, run in runs.items()}


@pytest.fixture(scope="module")
def served(written_report, trained_run):
    from mnist_cnn.predict import Predictor
    from mnist_cnn.serve import create_app
    from server_kit import background_server

    with background_server(create_app(Predictor.from_run(trained_run))) as url:
        yield url + "/"


def leftovers(page) -> list[tuple[str, str]]:
    names = set(page.evaluate("mnistPage.model.layers.map((L) => L.name)"))
    return [(w, text) for text in page.evaluate(VISIBLE_TEXTS)
            for w in WORD.findall(NOT_WORDS.sub("", text)) if w not in ALLOWED | names]


def open_a_map(page, kind: str) -> None:
    """Draw a 7 (once) and click a pixel of the first layer of `kind`'s maps."""
    if not page.evaluate("Boolean(mnistPage.saliency)"):
        draw(page, "7")
        wait_until(page, "/^[0-9]$/.test(document.getElementById('label').textContent)")
    layers = page.evaluate("mnistPage.model.layers.map((L) => [L.name, L.type, L.outShape])")
    name, _, (h, w, c) = next(L for L in layers if L[1].startswith(kind))
    click_map(page, name, (c, h, w), c // 2, h // 2, w // 2)
    wait_until(page, f"document.getElementById('detail')?.dataset.layer === '{name}'")
    wait_until(page, "Boolean(mnistPage.saliency)")


def test_the_catalogues_agree(browser, sites):
    context, page = open_page(browser, sites["uncalibrated"])
    messages = page.evaluate("MnistI18n.messages")
    context.close()
    en, ko = messages["en"], messages["ko"]
    assert set(en) == set(ko)
    fields = lambda m: {f for _, f, _, _ in string.Formatter().parse(m) if f}  # noqa: E731
    for key in en:
        assert fields(en[key]) == fields(ko[key]), key
        if WORD.sub("", NOT_WORDS.sub("", re.sub(r"<[^>]+>|\{\w+\}", "", ko[key]))).strip(
                " .,:;()'×·…%-"):
            assert HANGUL.search(ko[key]), f"{key} is not translated: {ko[key]}"


@pytest.mark.parametrize("size", SIZES, ids=[s[0] for s in SIZES])
@pytest.mark.parametrize("which", ["calibrated", "uncalibrated", "served"])
def test_the_korean_page_has_no_english_left(browser, sites, served, mnist, which, size):
    url = served if which == "served" else sites[which]
    context, page = open_page(browser, url, size, locale="ko-KR")
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert leftovers(page) == []  # before drawing
    found = []
    for kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        if kind == "AveragePooling2D" and which != "uncalibrated":
            continue  # only the custom network has one
        open_a_map(page, kind)
        texts = page.evaluate(VISIBLE_TEXTS)
        assert sum(bool(HANGUL.search(t)) for t in texts) > 40
        found += leftovers(page)
        if kind == "Conv2D" and which != "served":
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"page-ko-{size[0]}-{which}.png"),
                            full_page=True)
    context.close()
    assert found == []
    assert page.problems == [] and page.blocked == []


@pytest.mark.parametrize("size", SIZES, ids=[s[0] for s in SIZES])
def test_english_by_default_and_a_switch_that_is_remembered(browser, sites, mnist, size):
    context, page = open_page(browser, sites["calibrated"], size, locale="en-US")
    assert page.evaluate("document.documentElement.lang") == "en"
    open_a_map(page, "Conv2D")
    assert page.locator("#detail h3").text_content().startswith("conv2d")
    assert "map" in page.locator("#detail h3").text_content()
    assert not [t for t in page.evaluate(VISIBLE_TEXTS) if HANGUL.search(t)]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-en-{size[0]}.png"), full_page=True)
    page.locator('nav.lang button[data-lang="ko"]').click()  # the switch, with a panel open
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert HANGUL.search(page.locator("#detail h3").text_content())
    assert HANGUL.search(page.locator("#confidence").text_content())
    assert page.locator('nav.lang button[data-lang="ko"]').get_attribute("aria-pressed") == "true"
    page.reload()
    wait_until(page, "window.mnistPage && mnistPage.ready === true")
    assert page.evaluate("document.documentElement.lang") == "ko"  # remembered
    assert page.title() == "mnist-cnn · 숫자 그리기"
    page.locator('nav.lang button[data-lang="en"]').click()
    assert page.locator("#confidence").text_content() == "Draw a digit to start."
    context.close()
    assert page.problems == [] and page.blocked == []


def test_not_sure_below_the_reports_line(browser, sites, trained_run, mnist):
    from mnist_cnn import checkpoint
    from mnist_cnn.predict import Predictor
    from mnist_cnn.report_trust import held_out

    meta = checkpoint.read_meta(trained_run)
    line = meta.calibration.not_sure_below
    images = mnist[1][0][:2000]
    top = Predictor.from_run(trained_run).probabilities(images).max(1)
    unsure, sure = int((top < line).argmax()), int((top > line).argmax())
    assert top[unsure] < line < top[sure]
    context, page = open_page(browser, sites["calibrated"])
    percent = page.evaluate(f"MnistView.percent({line})")
    assert percent in page.locator("#trust").text_content()  # before drawing: the line
    page.evaluate(CLASSIFY, [images[unsure].ravel().tolist()])
    note = page.locator("#trust")
    assert "unsure" in note.get_attribute("class") and "unsure" in page.locator(
        "#label").get_attribute("class")
    assert note.text_content().startswith("Not sure") and percent in note.text_content()
    part = held_out(meta, *mnist[0])
    assert f"{len(part.labels):,} training images" in note.text_content()  # and it says so
    page.evaluate(CLASSIFY, [images[sure].ravel().tolist()])
    assert "unsure" not in note.get_attribute("class")
    assert note.text_content().startswith("Above") and percent in note.text_content()
    context.close()
    assert page.problems == [] and page.blocked == []


@pytest.mark.parametrize("which, says", [
    ("uncalibrated", "Uncalibrated: no \"not sure\" line yet. Run mnist-cnn report"),
    ("stale", "Uncalibrated: the \"not sure\" line in model.json was chosen for other weights"),
])
def test_without_a_line_the_page_says_so(browser, sites, mnist, which, says):
    context, page = open_page(browser, sites[which])
    page.evaluate(CLASSIFY, [mnist[1][0][0].ravel().tolist()])
    note = page.locator("#trust")
    assert note.text_content().startswith(says)
    assert not re.search(r"\d%", note.text_content())  # no made-up threshold
    assert "unsure" not in (page.locator("#label").get_attribute("class") or "")
    context.close()
    assert page.problems == [] and page.blocked == []

