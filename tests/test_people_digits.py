"""The benchmark's people-style digit sources (benchmarks/people_digits.py): deterministic,
labelled as documented, sane images, a kept-aside seed of its own, and the original renderer
(tests/digits.py, which the robustness tests use) unchanged."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

import people_digits as pd  # noqa: E402

from digits import FONTS, digit_set  # noqa: E402

# sha256 of tests/digits.digit_set(20, 1234), taken before the new sources were written
DIGIT_SET_20_1234 = "5e745529ce772e94a94895953a2fffe8be2e6333b613ad6199200740c6320178"
N = 20


def _digest(samples) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(s.image.mode.encode())
        h.update(str(s.image.size).encode())
        h.update(s.image.tobytes())
        h.update(f"{s.label}{s.dark_ink}{s.source}".encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def sets() -> dict[str, list[pd.Sample]]:
    return {source: pd.source_set(source, N, pd.DEFAULT_SEED) for source in pd.SOURCES}


def test_original_renderer_is_unchanged():
    assert _digest(digit_set(20, 1234)) == DIGIT_SET_20_1234


@pytest.mark.parametrize("source", pd.SOURCES)
def test_each_source_is_deterministic_for_a_seed(sets, source):
    again = pd.source_set(source, N, pd.DEFAULT_SEED)
    assert _digest(again) == _digest(sets[source])
    assert _digest(pd.source_set(source, N, pd.DEFAULT_SEED + 1)) != _digest(again)


def test_labels_cycle_and_samples_carry_their_source(sets):
    for source, samples in sets.items():
        assert [s.label for s in samples] == [i % 10 for i in range(N)]
        assert {s.source for s in samples} == {source}
        assert all(s.style for s in samples)
    mixed = pd.people_set(("pen2", "fonts2"), 10, pd.DEFAULT_SEED)
    assert [s.source for s in mixed] == ["pen2"] * 10 + ["fonts2"] * 10
    assert [s.label for s in mixed] == list(range(10)) * 2


def test_images_are_pil_images_of_sane_size(sets):
    for samples in sets.values():
        for s in samples:
            assert isinstance(s.image, Image.Image)
            assert s.image.mode in ("L", "RGB")
            assert 40 <= min(s.image.size) and max(s.image.size) <= 1000
            lo, hi = s.image.convert("L").getextrema()
            assert hi - lo > 60  # ink stands out from the paper


def test_kept_aside_seed_is_its_own():
    assert pd.KEPT_ASIDE_SEED != pd.DEFAULT_SEED
    for source in ("pen2", "photo"):
        kept = pd.source_set(source, 10, pd.KEPT_ASIDE_SEED)
        assert _digest(kept) != _digest(pd.source_set(source, 10, pd.DEFAULT_SEED))


def test_new_fonts_and_pen_are_not_the_original_ones():
    assert not set(pd.FONTS2) & set(FONTS)
    assert all(len(variants) >= 2 for variants in pd.PEN2.values())
    zeros = pd.source_set("fonts2", 300, pd.DEFAULT_SEED)[::10]
    assert "DejaVuSansMono.ttf" not in {s.style for s in zeros}  # its zero is dotted


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown source"):
        pd.source_set("mnist", 10)
