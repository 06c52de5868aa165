"""Digits as people write, type and photograph them, from sources independent of MNIST.

Four sources, each rendered by its own code and each deterministic for a seed:

- `digits`: tests/digits.py (one pen-stroke model and five fonts, with affine and elastic
  distortion, on canvases of any size, either polarity, with lighting, texture and tints).
- `pen2`: a second pen model with other skeletons: the other common ways people write each
  digit (a 1 with a flag and a base, a crossed 7, an open-top 4, a 9 with a straight stem,
  a 2 with a loop, a flat-topped 3, an 8 of two stacked loops, ...), two or three variants
  per digit, drawn as a chain of discs whose radius follows a smooth random pen pressure
  and thins at the stroke ends; its own jitter (slant, stretch, rotation, strokes shifted
  against each other, every point moved), on a plain sheet or a drawing pad.
- `fonts2`: six of matplotlib's bundled fonts that tests/digits.py does not use (monospace,
  serif bold, typewriter, Computer Modern bold and italic), as printed or on a screen.
- `photo`: `pen2` digits photographed on ruled or squared notebook paper: uneven shadow,
  a perspective (keystone) warp, motion blur, a low-resolution sensor with noise,
  upscaling and strong JPEG compression, with the colour of the room's light.

Sample i of every source shows the digit i % 10, so each source has the same number of
digits of every class (when its size is a multiple of 10).

Seeds: `DEFAULT_SEED` is for development. `KEPT_ASIDE_SEED` gives a kept-aside set, the
same sources drawn afresh: run it only for final figures (a release, a recipe decision),
never while choosing anything, or it stops being a set the work has never seen.

    python benchmarks/people_digits.py OUT_DIR [--n 200] [--seed S]

writes one contact sheet PNG per source, to look at what the benchmark feeds in
(benchmarks/preprocess_accuracy.py measures the models on it).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from digits import (  # noqa: E402
    FONT_DIR,
    GLYPH_SIZE,
    _float_image,
    _smooth,
    contact_sheet,
    digit_set,
)

SOURCES = ("digits", "pen2", "fonts2", "photo")
DEFAULT_SEED = 1234
KEPT_ASIDE_SEED = 20261207  # final figures only: see the module's docstring
DEFAULT_N_PER_SOURCE = 800
_SOURCE_KEYS = {"pen2": 2, "fonts2": 3, "photo": 4}  # each source its own random stream

FONTS2 = (  # upright, lining figures; none of them in tests/digits.py FONTS
    "DejaVuSansMono.ttf",
    "DejaVuSerif-Bold.ttf",
    "STIXGeneralBol.ttf",
    "cmtt10.ttf",
    "cmb10.ttf",
    "cmti10.ttf",
)  # left out: the DejaVu Display faces (no digits), Computer Modern roman (in digits.py's
#    notes as old-style), the obliques (only a slant of faces already used)
FONT_SKIPS = {"DejaVuSansMono.ttf": {0}}  # its zero is dotted


@dataclass(frozen=True)
class Sample:
    """One rendered image, what it shows, and where it came from."""

    image: Image.Image
    label: int
    dark_ink: bool
    source: str  # one of SOURCES
    style: str  # the variant, font or (for `digits`) that renderer's own source name


def _loop(cx: float, cy: float, rx: float, ry: float, start: float = -90.0,
          turn: float = -380.0, points: int = 10) -> list[tuple[float, float]]:
    """A closed pen loop round an ellipse (counter-clockwise on paper for negative `turn`),
    overshooting its start a little so that it closes."""
    angles = np.radians(start + np.linspace(0, turn, points))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


# Pen skeletons for `pen2`, in a box about 0.6 wide and 1 tall (y down): for each digit,
# named variants, each a list of strokes, each stroke a list of points on a smooth curve.
PEN2: dict[int, dict[str, list[list[tuple[float, float]]]]] = {
    0: {
        "narrow": [_loop(0.28, 0.5, 0.24, 0.48, start=-95, turn=-390, points=12)],
        "round": [_loop(0.34, 0.5, 0.34, 0.42, start=-60, turn=-400, points=12)],
    },
    1: {
        "flag": [[(0.16, 0.3), (0.34, 0.02)], [(0.34, 0.02), (0.31, 0.98)]],
        "flag-base": [[(0.16, 0.28), (0.34, 0.02)], [(0.34, 0.02), (0.33, 0.96)],
                      [(0.08, 0.97), (0.58, 0.96)]],
        "bowed": [[(0.38, 0.02), (0.34, 0.5), (0.27, 0.98)]],
    },
    2: {
        "loop": [[(0.04, 0.24), (0.16, 0.05), (0.38, 0.01), (0.54, 0.15), (0.52, 0.36),
                  (0.3, 0.6), (0.14, 0.8), (0.06, 0.92), (0.14, 0.99), (0.27, 0.94),
                  (0.25, 0.81), (0.12, 0.82), (0.1, 0.94), (0.3, 0.98), (0.6, 0.96)]],
        "z": [[(0.05, 0.2), (0.2, 0.03), (0.42, 0.04), (0.55, 0.2), (0.48, 0.4),
               (0.04, 0.96)], [(0.04, 0.96), (0.3, 0.93), (0.6, 0.97)]],
    },
    3: {
        "flat-top": [[(0.04, 0.03), (0.55, 0.03)], [(0.55, 0.03), (0.2, 0.42)],
                     [(0.2, 0.42), (0.42, 0.44), (0.57, 0.63), (0.53, 0.85), (0.32, 0.98),
                      (0.03, 0.88)]],
        "two-bowls": [[(0.06, 0.12), (0.27, 0.01), (0.48, 0.1), (0.45, 0.3), (0.2, 0.43)],
                      [(0.2, 0.43), (0.48, 0.52), (0.6, 0.75), (0.45, 0.95), (0.2, 0.98),
                       (0.02, 0.84)]],
    },
    4: {
        "open-top": [[(0.1, 0.02), (0.05, 0.6)], [(0.05, 0.6), (0.6, 0.58)],
                     [(0.45, 0.06), (0.46, 0.98)]],
        "closed": [[(0.4, 0.02), (0.02, 0.66)], [(0.02, 0.66), (0.6, 0.65)],
                   [(0.4, 0.02), (0.42, 0.98)]],
    },
    5: {
        "flag-last": [[(0.1, 0.04), (0.07, 0.45)],
                      [(0.07, 0.45), (0.3, 0.36), (0.52, 0.46), (0.58, 0.68), (0.48, 0.9),
                       (0.25, 0.98), (0.04, 0.9)], [(0.1, 0.04), (0.58, 0.02)]],
        "hook": [[(0.58, 0.03), (0.12, 0.04)], [(0.12, 0.04), (0.08, 0.44)],
                 [(0.08, 0.44), (0.35, 0.38), (0.56, 0.55), (0.52, 0.82), (0.32, 0.97),
                  (0.1, 0.93), (0.04, 0.8)]],
    },
    6: {
        "small-loop": [[(0.5, 0.02), (0.28, 0.22), (0.12, 0.5), (0.06, 0.78), (0.18, 0.96),
                        (0.38, 0.96), (0.5, 0.8), (0.42, 0.62), (0.22, 0.6), (0.08, 0.74)]],
        "big-loop": [[(0.56, 0.06), (0.32, 0.08), (0.12, 0.32), (0.04, 0.64), (0.15, 0.92),
                      (0.4, 0.98), (0.6, 0.82), (0.58, 0.58), (0.36, 0.48), (0.14, 0.56),
                      (0.05, 0.68)]],
    },
    7: {
        "crossed": [[(0.03, 0.05), (0.58, 0.04)], [(0.58, 0.04), (0.32, 0.6), (0.22, 0.98)],
                    [(0.14, 0.52), (0.52, 0.5)]],
        "tick": [[(0.02, 0.18), (0.04, 0.04)], [(0.04, 0.04), (0.58, 0.05)],
                 [(0.58, 0.05), (0.4, 0.45), (0.32, 0.98)]],
    },
    8: {
        "two-loops": [_loop(0.3, 0.25, 0.19, 0.23, start=90, turn=-380),
                      _loop(0.3, 0.72, 0.27, 0.26, start=-90, turn=380)],
        "from-middle": [[(0.3, 0.47), (0.52, 0.3), (0.5, 0.1), (0.3, 0.02), (0.1, 0.1),
                         (0.1, 0.3), (0.3, 0.47), (0.55, 0.68), (0.5, 0.92), (0.3, 0.99),
                         (0.08, 0.9), (0.06, 0.7), (0.3, 0.47)]],
    },
    9: {
        "straight-stem": [[(0.52, 0.22), (0.4, 0.05), (0.2, 0.03), (0.06, 0.18), (0.1, 0.38),
                           (0.3, 0.44), (0.52, 0.3)], [(0.54, 0.04), (0.54, 0.98)]],
        "one-stroke": [[(0.54, 0.14), (0.34, 0.02), (0.1, 0.1), (0.06, 0.3), (0.25, 0.44),
                        (0.5, 0.34), (0.56, 0.1), (0.55, 0.55), (0.5, 0.98)]],
    },
}


# --- sets ---------------------------------------------------------------------------------


def people_set(sources: tuple[str, ...] | list[str] = SOURCES,
               n_per_source: int = DEFAULT_N_PER_SOURCE,
               seed: int = DEFAULT_SEED) -> list[Sample]:
    """`n_per_source` digits from each source in turn, fully determined by `seed`."""
    return [s for source in sources for s in source_set(source, n_per_source, seed)]


def source_set(source: str, n: int, seed: int = DEFAULT_SEED) -> list[Sample]:
    """`n` digits from one source, labels cycling 0..9."""
    if source == "digits":  # the original renderer, exactly as the robustness tests see it
        return [Sample(s.image, s.label, s.dark_ink, "digits", s.source)
                for s in digit_set(n, seed)]
    if source not in _SOURCE_KEYS:
        raise ValueError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    render = _RENDERERS[source]
    rng = np.random.default_rng([seed, _SOURCE_KEYS[source]])
    return [render(i % 10, rng) for i in range(n)]


# --- pen2: a second pen model -------------------------------------------------------------


def pen2_digit(label: int, rng: np.random.Generator) -> Sample:
    """A digit written with a pen on a plain sheet or a drawing pad."""
    mask, variant = _pen2_mask(label, rng)
    side = int(rng.integers(64, 480))
    canvas = _place(mask, side, rng.uniform(0.35, 0.8), rng)
    dark_ink = bool(rng.random() < 0.8)
    return Sample(_scan(canvas, dark_ink, rng), label, dark_ink, "pen2", variant)


def _pen2_mask(label: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The digit's strokes drawn with a pressure-varying pen, as a float mask cropped to
    its ink, and the variant's name."""
    names = sorted(PEN2[label])
    variant = names[int(rng.integers(len(names)))]
    strokes = _jitter(PEN2[label][variant], rng)
    img = Image.new("L", (GLYPH_SIZE * 2, GLYPH_SIZE * 2), 0)
    draw = ImageDraw.Draw(img)
    radius = rng.uniform(3.0, 11.0)  # px at GLYPH_SIZE: a fine liner to a marker
    for stroke in strokes:
        _ink_stroke(draw, GLYPH_SIZE * (0.5 + _smooth(stroke)), radius, rng)
    mask = np.asarray(img.crop(img.getbbox()), dtype=np.float32) / 255
    return mask, variant


def _jitter(strokes: list[list[tuple[float, float]]],
            rng: np.random.Generator) -> list[np.ndarray]:
    """One hand's version of the skeleton: slant, stretch and rotation for the whole digit;
    a smooth random wobble (a point shared by two strokes moves with both, so joints stay
    joined) and a slight tremor; a stroke that starts apart from the others is shifted a
    little, as the pen was lifted."""
    shear, stretch = rng.uniform(-0.15, 0.3), rng.uniform(0.8, 1.25)
    angle = np.radians(rng.uniform(-8, 8))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    wobble = _wobble(rng)
    seen: list[tuple[float, float]] = []
    out = []
    for stroke in strokes:
        pts = np.array(stroke, dtype=np.float64)
        pts = pts + wobble(pts) + rng.normal(0, 0.005, size=pts.shape)
        if stroke[0] not in seen:
            pts = pts + rng.normal(0, 0.015, size=2)
        seen += [stroke[0], stroke[-1]]
        x = (pts[:, 0] - 0.3) * stretch + shear * (0.5 - pts[:, 1])
        out.append(np.stack([x, pts[:, 1] - 0.5], axis=1) @ rot.T)
    return out


def _wobble(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth random displacement of points in the digit's box (about 0.02 of its height):
    a sum of three plane waves for each coordinate."""
    freq = rng.normal(0, 2 * np.pi * 1.2, size=(2, 3, 2))
    phase = rng.uniform(0, 2 * np.pi, size=(2, 3))
    amp = rng.uniform(0, 0.02, size=(2, 3))

    def move(pts: np.ndarray) -> np.ndarray:
        waves = np.sin(np.einsum("ckd,nd->nck", freq, pts) + phase)  # (n, 2, 3)
        return (waves * amp).sum(axis=2)

    return move


def _ink_stroke(draw: ImageDraw.ImageDraw, xy: np.ndarray, radius: float,
                rng: np.random.Generator) -> None:
    """A chain of discs along the curve: the radius follows a smooth random pressure and
    thins towards the stroke's ends."""
    steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    length = max(arc[-1], 1.0)
    s = np.linspace(0, length, max(2, int(length / max(0.6, radius / 3))))
    pts = np.stack([np.interp(s, arc, xy[:, 0]), np.interp(s, arc, xy[:, 1])], axis=1)
    t = s / length
    pressure = 1 + rng.uniform(0, 0.35) * np.sin(2 * np.pi * (rng.uniform(0.4, 1.6) * t
                                                             + rng.uniform()))
    end = min(0.3 * length, 6 * radius)  # how far from each end the pen thins
    taper = np.clip(np.minimum(s, length - s) / max(end, 1e-6), 0, 1) ** 0.5
    thin = rng.uniform(0.35, 0.7)  # the width at the very ends, as a share
    radii = radius * pressure * (thin + (1 - thin) * taper)
    for (x, y), r in zip(pts, radii, strict=True):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)


def _place(mask: np.ndarray, side: int, height: float, rng: np.random.Generator,
           margin: float = 0.04) -> np.ndarray:
    """The mask scaled to `height` of a square canvas (narrower if it is wide), anywhere
    it fits with a small margin."""
    h, w = mask.shape
    scale = min(height * side / h, (1 - 2 * margin) * side / w)
    gw, gh = max(2, round(w * scale)), max(2, round(h * scale))
    small = np.asarray(_float_image(mask).resize((gw, gh), Image.Resampling.BOX))
    canvas = np.zeros((side, side), dtype=np.float32)
    m = int(margin * side)
    top = int(rng.integers(m, max(m, side - gh - m) + 1))
    left = int(rng.integers(m, max(m, side - gw - m) + 1))
    canvas[top : top + gh, left : left + gw] = small
    return np.clip(canvas, 0, 1)


def _scan(canvas: np.ndarray, dark_ink: bool, rng: np.random.Generator) -> Image.Image:
    """A sheet or a drawing pad: even light, fine grain, a coloured pen in half of them."""
    paper = rng.uniform(0.8, 1.0) if dark_ink else rng.uniform(0.0, 0.2)
    ink = rng.uniform(0.0, 0.35) if dark_ink else rng.uniform(0.75, 1.0)
    gray = paper + (ink - paper) * canvas
    gray = gray + rng.normal(0, rng.uniform(0, 0.03), size=canvas.shape)
    img = _to_image(gray)
    if rng.random() < 0.5:
        colour = rng.uniform(0.2, 1.0, size=3)  # a blue, black or red pen
        rgb = paper + (ink - paper) * canvas[..., None] * (1 - 0.5 * (1 - colour))
        img = _to_image(rgb)
    return img


def _to_image(a: np.ndarray) -> Image.Image:
    """An 8-bit image of values 0..1: gray for (H, W), RGB for (H, W, 3)."""
    return Image.fromarray(np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8))


# --- fonts2: other printed faces ----------------------------------------------------------


def fonts2_digit(label: int, rng: np.random.Generator) -> Sample:
    """A digit in one of FONTS2, printed on paper or shown on a screen."""
    fonts = [f for f in FONTS2 if label not in FONT_SKIPS.get(f, ())]
    font = fonts[int(rng.integers(len(fonts)))]
    mask = _font_mask(label, font, rng)
    side = int(rng.integers(48, 400))
    canvas = _place(mask, side, rng.uniform(0.3, 0.85), rng)
    dark_ink = bool(rng.random() < 0.7)
    paper = rng.uniform(0.75, 1.0) if dark_ink else rng.uniform(0.0, 0.25)
    ink = rng.uniform(0.0, 0.3) if dark_ink else rng.uniform(0.7, 1.0)
    gray = paper + (ink - paper) * canvas + rng.normal(0, rng.uniform(0, 0.04), canvas.shape)
    img = _to_image(gray)
    if rng.random() < 0.4:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * side / 200))
    return Sample(img, label, dark_ink, "fonts2", font)


def _font_mask(label: int, font_file: str, rng: np.random.Generator) -> np.ndarray:
    """The glyph with a random extra stroke width, slightly slanted, turned and stretched,
    as a float mask cropped to its ink."""
    font = ImageFont.truetype(str(FONT_DIR / font_file), GLYPH_SIZE)
    img = Image.new("L", (GLYPH_SIZE * 2, GLYPH_SIZE * 2), 0)
    ImageDraw.Draw(img).text((GLYPH_SIZE // 2, GLYPH_SIZE // 4), str(label), fill=255,
                             font=font, stroke_width=int(rng.integers(0, 6)), stroke_fill=255)
    shear, sx = rng.uniform(-0.2, 0.15), rng.uniform(0.85, 1.15)
    c = GLYPH_SIZE  # the centre of the canvas
    coeffs = (1 / sx, shear, c - c / sx - shear * c, 0, 1, 0)
    img = img.transform(img.size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)
    img = img.rotate(rng.uniform(-6, 6), Image.Resampling.BILINEAR)
    return np.asarray(img.crop(img.getbbox()), dtype=np.float32) / 255


# --- photo: pen2 digits photographed on notebook paper ------------------------------------


def photo_digit(label: int, rng: np.random.Generator) -> Sample:
    """A pen2 digit on ruled or squared paper, photographed with a phone in poor light."""
    mask, variant = _pen2_mask(label, rng)
    side = int(rng.integers(200, 560))
    height = rng.uniform(0.35, 0.7)
    canvas = _place(mask, side, height, rng, margin=0.15)
    ruling, lines = _ruling(side, height * side, rng)
    paper, ink = rng.uniform(0.8, 0.97), rng.uniform(0.05, 0.3)
    page = paper - rng.uniform(0.1, 0.2) * lines  # faint beside the ink
    gray = page + (ink - page) * canvas
    rgb = gray[..., None] * _shadow(side, rng)[..., None] * _light_colour(rng)
    img = _perspective(_to_image(rgb), rng)
    img = _motion_blur(img, rng)
    img = _sensor(img, height, rng)
    return Sample(img, label, True, "photo", f"{variant} {ruling}")


def _ruling(side: int, digit_px: float, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """Faint notebook lines, a squared grid or nothing, as a 0..1 line mask."""
    kind = ("lines", "grid", "plain")[int(rng.choice(3, p=[0.45, 0.4, 0.15]))]
    lines = np.zeros((side, side), dtype=np.float32)
    if kind == "plain":
        return kind, lines
    pitch = digit_px * (rng.uniform(0.5, 0.9) if kind == "lines" else rng.uniform(0.25, 0.45))
    width = max(1, round(digit_px * rng.uniform(0.02, 0.04)))  # a thin printed line
    offset = rng.uniform(0, pitch)
    for pos in np.arange(offset, side, pitch).astype(int):
        lines[pos : pos + width, :] = 1
        if kind == "grid":
            lines[:, pos : pos + width] = 1
    return kind, lines


def _shadow(side: int, rng: np.random.Generator) -> np.ndarray:
    """Uneven light: a gradient across the sheet and a soft-edged shadow over part of it."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / side
    a, b = rng.uniform(0, 2 * np.pi, size=2)
    light = 1 - rng.uniform(0, 0.3) * (0.5 + 0.5 * (np.cos(a) * xs + np.sin(a) * ys))
    edge = (np.cos(b) * (xs - 0.5) + np.sin(b) * (ys - 0.5)) - rng.uniform(0.1, 0.6)
    soft = 1 / (1 + np.exp(-edge / rng.uniform(0.03, 0.12)))
    return light * (1 - rng.uniform(0, 0.3) * soft)


def _light_colour(rng: np.random.Generator) -> np.ndarray:
    """The colour cast of the room's light: warm, cool or neutral, never quite white."""
    cast = np.array([(1.0, 0.96, 0.88), (0.92, 0.96, 1.0), (1.0, 1.0, 1.0)])
    colour = cast[int(rng.integers(3))] + rng.normal(0, 0.02, size=3)
    return np.clip(colour, 0.8, 1.0).astype(np.float32)


def _perspective(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A keystone warp: the sheet seen at an angle. The frame shows a quadrilateral inside
    the sheet (each corner moved inwards by up to 12% of the side), so no edge of the sheet
    comes into the picture."""
    w, h = img.size
    dst = np.array([(0, 0), (w, 0), (w, h), (0, h)], dtype=np.float64)
    inwards = np.array([(1, 1), (-1, 1), (-1, -1), (1, -1)])
    src = dst + inwards * rng.uniform(0, 0.12, size=(4, 2)) * (w, h)
    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append(([x, y, 1, 0, 0, 0, -u * x, -u * y], u))
        rows.append(([0, 0, 0, x, y, 1, -v * x, -v * y], v))
    coeffs = np.linalg.solve(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
    return img.transform(img.size, Image.Transform.PERSPECTIVE, tuple(coeffs),
                         Image.Resampling.BILINEAR)


def _motion_blur(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Camera shake: the mean of the image shifted along a short line."""
    length = int(rng.integers(1, max(2, img.width // 60)))
    if length < 2:
        return img
    angle = rng.uniform(0, np.pi)
    a = np.pad(np.asarray(img, dtype=np.float32), ((length,) * 2, (length,) * 2, (0, 0)),
               mode="edge")
    h, w = img.height, img.width
    out = np.zeros((h, w, a.shape[2]), dtype=np.float32)
    for k in range(length):
        dy, dx = round(k * np.sin(angle)), round(k * np.cos(angle))
        out += a[length + dy : length + dy + h, length + dx : length + dx + w]
    return Image.fromarray(np.rint(out / length).astype(np.uint8))


def _sensor(img: Image.Image, height: float, rng: np.random.Generator) -> Image.Image:
    """A small noisy sensor, the picture enlarged again, and strong JPEG compression."""
    digit_px = rng.uniform(14, 40)  # the digit's height on the sensor
    low = min(img.width, round(digit_px / height))
    small = img.resize((low, low), Image.Resampling.BILINEAR)
    a = np.asarray(small, dtype=np.float32) + rng.normal(0, rng.uniform(2, 8), (low, low, 3))
    small = Image.fromarray(np.rint(np.clip(a, 0, 255)).astype(np.uint8))
    img = small.resize(img.size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(rng.integers(8, 40)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


_RENDERERS: dict[str, Callable[[int, np.random.Generator], Sample]] = {
    "pen2": pen2_digit, "fonts2": fonts2_digit, "photo": photo_digit,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="Contact sheets of every source.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--n", type=int, default=200, help="digits per source")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        path = args.out_dir / f"people_{source}.png"
        contact_sheet(source_set(source, args.n, args.seed), mode="RGB").save(path)
        print(path)


if __name__ == "__main__":
    main()
