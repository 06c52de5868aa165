"""The report page in English and Korean: the catalogues agree, the Korean view has no English
left in it (beyond an explicit list of names), and the browser picks and switches language."""

from __future__ import annotations

import re
import string
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mnist_cnn.report_text import CATALOGUES, EN, KO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[._\-/][A-Za-z0-9]+)*")
# Latin-script words a Korean reader sees as they are: names of things, units, symbols.
ALLOWED = {
    "mnist", "MNIST", "mnist-cnn", "fashion-mnist", "model.json", "calibration.json",
    "seed", "seed-pool3", "lesson", "lesson-pool3", "fast",  # architecture and recipe names
    "cpu", "cuda", "mps", "fp32", "bf16",  # devices and precisions
    "softmax", "ECE", "FGSM", "epsilon", "T", "t", "x",  # terms and symbols
    "integrated", "gradients",  # the method's name, given beside its Korean name
    "validation-split",  # the command-line option --validation-split
}


VOID = {"img", "br", "hr", "input", "meta", "link", "wbr"}
# Not words: the run's date as model.json has it, and sizes such as 3x3.
NOT_WORDS = re.compile(r"\d{4}-\d\d-\d\dT[\d:+.Z-]+|\d+x\d+")


class _Texts(HTMLParser):
    """Visible text and alt text of one language's view, minus translate="no" blocks."""

    def __init__(self, lang: str):
        super().__init__()
        self.lang, self.texts, self.depth, self.skip = lang, [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if not self.depth:
            if tag == "div" and attrs.get("lang") == self.lang:
                self.depth = 1
                self.texts.append(attrs["data-title"])
            return
        if tag in VOID:
            if tag == "img" and not self.skip:
                self.texts.append(attrs.get("alt", ""))
            return
        self.depth += 1
        if self.skip or attrs.get("translate") == "no":
            self.skip += 1

    def handle_endtag(self, tag):
        if self.depth and tag not in VOID:
            self.depth -= 1
            self.skip = max(0, self.skip - 1)

    def handle_data(self, data):
        if self.depth and not self.skip and data.strip():
            self.texts.append(data.strip())


def view_texts(page: str, lang: str) -> list[str]:
    parser = _Texts(lang)
    parser.feed(page)
    assert parser.texts, f"no {lang} view"
    return parser.texts


def _fields(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_catalogues_have_the_same_messages_and_fields():
    assert set(EN) == set(KO)
    for key in EN:
        assert _fields(EN[key]) == _fields(KO[key]), key
        if EN[key]:
            assert HANGUL.search(KO[key]), f"{key} is not translated"


def test_korean_view_has_no_english_left(written_report):
    page = written_report.html.read_text()
    # the run's own names: its architecture and its folder (conftest's trained_run)
    allowed = ALLOWED | {written_report.data.meta.architecture.name, "fast-seed0"}
    english = {m for m in EN.values() if m} | {m.split("{")[0].strip() for m in EN.values()}
    texts = view_texts(page, "ko")
    assert len(texts) > 80
    leftovers = []
    for text in texts:
        assert text not in english, text
        leftovers += [(w, text) for w in WORD.findall(NOT_WORDS.sub("", text))
                      if w not in allowed]
    assert leftovers == [], leftovers


def test_english_view_has_no_korean(written_report):
    texts = view_texts(written_report.html.read_text(), "en")
    assert not [t for t in texts if HANGUL.search(t)]
    assert "Why did it answer that? Saliency" in texts


def test_program_output_blocks_are_marked_and_the_same_in_both_views(written_report):
    page = written_report.html.read_text()
    blocks = re.findall(r'<pre translate="no">(.*?)</pre>', page, flags=re.S)
    assert len(blocks) == 2 * len(CATALOGUES) and blocks[0] == blocks[2]
    assert "Total params: 93,322" in blocks[0]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_browser_picks_the_language_and_switches(written_report):
    from playwright.sync_api import sync_playwright

    url = written_report.html.resolve().as_uri()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        for locale, lang, other in (("ko-KR", "ko", "en"), ("en-US", "en", "ko")):
            context = browser.new_context(locale=locale, viewport={"width": 1200, "height": 900})
            page = context.new_page()
            problems = []
            page.on("pageerror", lambda e, problems=problems: problems.append(str(e)))
            page.goto(url)
            assert page.evaluate("document.documentElement.lang") == lang
            assert page.locator(f'.view[lang="{lang}"]').is_visible()
            assert not page.locator(f'.view[lang="{other}"]').is_visible()
            assert page.title().startswith("mnist-cnn " + ("보고서" if lang == "ko" else "report"))
            page.screenshot(path=str(ARTIFACTS / f"report-{lang}.png"))
            page.locator(f'nav.lang button[data-lang="{other}"]').click()
            assert page.locator(f'.view[lang="{other}"]').is_visible()
            assert not page.locator(f'.view[lang="{lang}"]').is_visible()
            page.reload()  # the choice is remembered
            assert page.locator(f'.view[lang="{other}"]').is_visible()
            assert problems == []
            context.close()
        browser.close()
