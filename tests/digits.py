"""Synthetic "a person's own digit" images, for testing preprocessing against non-MNIST input.

Each image is a digit glyph from one of matplotlib's bundled fonts, made less typographic the
way a hand and a camera make it: a random stroke width, slant, rotation, stretch and a smooth
elastic wobble; then put somewhere (often off-centre, often small) on a canvas of any size,
dark ink on light paper or light on dark, with uneven lighting, paper texture, noise and blur.
Deterministic for a seed. `python tests/digits.py OUT_DIR` writes a contact sheet to look at.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONTS = (  # upright sans and serif faces, regular and bold
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "STIXGeneral.ttf",
    "cmss10.ttf",
)  # left out: italics (slant comes from the random shear, for every glyph), monospace (its
#    zero is slashed) and Computer Modern roman (old-style figures)
GLYPH_SIZE = 160  # px: glyphs are drawn large, then distorted and scaled onto the canvas
HAND_SHARE = 0.7  # the share of digits drawn as pen strokes rather than typed in a font

# Pen strokes as people write each digit, in a box 0.6 wide and 1 tall (y down). Each
# stroke is a list of points joined by a smooth curve; a digit has one to three strokes.
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.32, 0.02), (0.08, 0.18), (0.0, 0.55), (0.15, 0.9), (0.35, 0.98), (0.56, 0.82),
         (0.62, 0.42), (0.5, 0.1), (0.3, 0.03)]],
    1: [[(0.34, 0.03), (0.3, 0.97)]],
    2: [[(0.05, 0.25), (0.18, 0.05), (0.42, 0.03), (0.55, 0.22), (0.45, 0.48),
         (0.05, 0.95)], [(0.05, 0.95), (0.6, 0.94)]],
    3: [[(0.05, 0.12), (0.3, 0.02), (0.52, 0.15), (0.48, 0.36), (0.25, 0.48), (0.52, 0.6),
         (0.55, 0.82), (0.3, 0.97), (0.03, 0.86)]],
    4: [[(0.38, 0.02), (0.04, 0.64)], [(0.04, 0.64), (0.6, 0.62)], [(0.45, 0.1), (0.43, 0.98)]],
    5: [[(0.55, 0.03), (0.12, 0.04)], [(0.12, 0.04), (0.08, 0.45)],
        [(0.08, 0.45), (0.35, 0.37), (0.55, 0.55), (0.54, 0.82), (0.3, 0.97), (0.03, 0.87)]],
    6: [[(0.48, 0.0), (0.22, 0.3), (0.07, 0.65), (0.15, 0.92), (0.33, 0.98), (0.5, 0.86),
         (0.47, 0.66), (0.28, 0.6), (0.09, 0.72)]],
    7: [[(0.03, 0.05), (0.58, 0.05)], [(0.58, 0.05), (0.22, 0.97)]],
    8: [[(0.5, 0.14), (0.3, 0.02), (0.1, 0.14), (0.18, 0.36), (0.45, 0.56), (0.55, 0.8),
         (0.32, 0.98), (0.08, 0.8), (0.18, 0.58), (0.45, 0.38), (0.52, 0.22), (0.5, 0.14)]],
    9: [[(0.52, 0.2), (0.3, 0.03), (0.08, 0.18), (0.1, 0.4), (0.33, 0.46), (0.53, 0.28)],
        [(0.53, 0.18), (0.5, 0.6), (0.42, 0.97)]],
}


@dataclass(frozen=True)
class Sample:
    """One rendered image and what it shows."""

    image: Image.Image
    label: int
    dark_ink: bool
    source: str  # "hand" (pen strokes) or the font's file name


def digit_set(n: int = 600, seed: int = 1234) -> list[Sample]:
    """`n` rendered digits, labels cycling 0..9, fully determined by `seed`."""
    rng = np.random.default_rng(seed)
    return [render_digit(i % 10, rng) for i in range(n)]


def render_digit(label: int, rng: np.random.Generator) -> Sample:
    """One digit, as a person might photograph or draw it."""
    source = "hand" if rng.random() < HAND_SHARE else FONTS[rng.integers(len(FONTS))]
    glyph = _glyph(label, source, rng)
    glyph = _elastic(_affine(glyph, rng), rng)
    canvas_side = int(rng.integers(56, 900))
    mask = _place(glyph, canvas_side, rng)
    dark_ink = bool(rng.random() < 0.6)
    image = _paint(mask, dark_ink, rng)
    return Sample(image=image, label=label, dark_ink=dark_ink, source=source)


def _glyph(label: int, source: str, rng: np.random.Generator) -> np.ndarray:
    """The digit as a float mask 0..1, cropped to its ink: pen strokes or a font."""
    img = _hand(label, rng) if source == "hand" else _typed(label, source, rng)
    return np.asarray(img.crop(img.getbbox()), dtype=np.float32) / 255


def _hand(label: int, rng: np.random.Generator) -> Image.Image:
    """The digit's pen strokes, each point moved a little, as no two hands agree."""
    img = Image.new("L", (GLYPH_SIZE * 2, GLYPH_SIZE * 2), 0)
    draw = ImageDraw.Draw(img)
    width = int(rng.integers(8, 26))
    for stroke in STROKES[label]:
        pts = np.array(stroke) + rng.normal(0, 0.025, size=(len(stroke), 2))
        xy = [(GLYPH_SIZE * (0.5 + x), GLYPH_SIZE * (0.5 + y)) for x, y in _smooth(pts)]
        draw.line(xy, fill=255, width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):  # round pen ends
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
    return img


def _smooth(pts: np.ndarray, per_segment: int = 12) -> np.ndarray:
    """A Catmull-Rom curve through the points (a straight line for two points)."""
    if len(pts) < 3:
        return pts
    p = np.vstack([pts[0], pts, pts[-1]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    return np.vstack([*out, pts[-1:]])


def _typed(label: int, font_file: str, rng: np.random.Generator) -> Image.Image:
    """The digit in a font, with a random stroke width."""
    font = ImageFont.truetype(str(FONT_DIR / font_file), GLYPH_SIZE)
    stroke = int(rng.integers(0, 9))  # 0 = the font's own weight; more = a felt pen
    img = Image.new("L", (GLYPH_SIZE * 2, GLYPH_SIZE * 2), 0)
    ImageDraw.Draw(img).text(
        (GLYPH_SIZE // 2, GLYPH_SIZE // 4), str(label), fill=255, font=font,
        stroke_width=stroke, stroke_fill=255,
    )
    return img


def _affine(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slant, slight rotation and stretch, as handwriting varies."""
    h, w = mask.shape
    pad = max(h, w) // 2
    img = _float_image(np.pad(mask, pad))
    shear = rng.uniform(-0.3, 0.3)
    sx, sy = rng.uniform(0.75, 1.25), rng.uniform(0.85, 1.15)
    cx, cy = img.width / 2, img.height / 2
    # inverse map (output -> input) for PIL: x_in = (x - cx)/sx + shear*(y - cy) + cx
    coeffs = (1 / sx, shear, cx - cx / sx - shear * cy, 0, 1 / sy, cy - cy / sy)
    img = img.transform(img.size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)
    img = img.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR)
    out = np.asarray(img)
    box = Image.fromarray((out > 0.05).astype(np.uint8)).getbbox()
    return out[box[1] : box[3], box[0] : box[2]]


def _elastic(mask: np.ndarray, rng: np.random.Generator, amount: float = 0.04) -> np.ndarray:
    """A smooth random wobble of the strokes (about `amount` of the glyph size)."""
    spread = amount * max(mask.shape)
    mask = np.pad(mask, max(mask.shape) // 5)  # room to wobble: nothing is cut off
    h, w = mask.shape
    grid = rng.normal(0, spread, size=(2, 4, 4)).astype(np.float32)
    dy, dx = (np.asarray(_float_image(g).resize((w, h), Image.Resampling.BICUBIC))
              for g in grid)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = _sample(mask, ys + dy, xs + dx)
    box = Image.fromarray((out > 0.05).astype(np.uint8)).getbbox()
    return out[box[1] : box[3], box[0] : box[2]]


def _sample(a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear lookup of `a` at float coordinates; zero outside."""
    padded = np.pad(a, 2)  # a zero frame: lookups outside land there
    ys, xs = np.clip(ys + 2, 0, a.shape[0] + 2), np.clip(xs + 2, 0, a.shape[1] + 2)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    top = padded[y0, x0] * (1 - fx) + padded[y0, x0 + 1] * fx
    bottom = padded[y0 + 1, x0] * (1 - fx) + padded[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _place(glyph: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Scale the glyph to 25..85% of the canvas height and put it anywhere it fits."""
    h, w = glyph.shape
    scale = min(rng.uniform(0.25, 0.85) * side / h, 0.95 * side / w)
    gw, gh = max(2, round(w * scale)), max(2, round(h * scale))
    small = np.asarray(_float_image(glyph).resize((gw, gh), Image.Resampling.BILINEAR))
    canvas = np.zeros((side, side), dtype=np.float32)
    top, left = int(rng.integers(0, side - gh + 1)), int(rng.integers(0, side - gw + 1))
    canvas[top : top + gh, left : left + gw] = small
    return np.clip(canvas, 0, 1)


def _paint(mask: np.ndarray, dark_ink: bool, rng: np.random.Generator) -> Image.Image:
    """Ink on paper with a lighting gradient, blotchy texture, grain and optional blur."""
    side = mask.shape[0]
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / side
    angle = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0, 0.25) * (np.cos(angle) * xs + np.sin(angle) * ys)  # a shadow
    blotch = rng.normal(0, rng.uniform(0, 0.03), size=(6, 6)).astype(np.float32)
    texture = np.asarray(_float_image(blotch).resize((side, side), Image.Resampling.BICUBIC))
    grain = rng.normal(0, rng.uniform(0, 0.05), size=mask.shape).astype(np.float32)
    if dark_ink:
        paper, ink = rng.uniform(0.7, 1.0) - light, rng.uniform(0.0, 0.3)
    else:
        paper, ink = rng.uniform(0.0, 0.25) + light, rng.uniform(0.75, 1.0)
    gray = paper * (1 - mask) + ink * mask + texture + grain
    img = Image.fromarray(np.rint(np.clip(gray, 0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5) * side / 200))
    if rng.random() < 0.3:  # a coloured photo of it
        tint = tuple(int(v) for v in rng.integers(200, 256, size=3))
        img = Image.merge("RGB", [img.point(lambda p, t=t: p * t // 255) for t in tint])
    return img


def _float_image(a: np.ndarray) -> Image.Image:
    """A mode "F" image of a float array (PIL needs float32, contiguous)."""
    return Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))


def naive_28(image: Image.Image) -> np.ndarray:
    """The baseline without preprocessing: grayscale, squashed to 28x28, taken as it is."""
    small = image.convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.uint8)


def contact_sheet(samples: list, cols: int = 20, cell: int = 64,
                  mode: str = "L") -> Image.Image:
    """A grid of thumbnails in order, to look at what the tests feed in (each column one
    digit when `cols` is a multiple of 10); `mode` "RGB" keeps the colours."""
    rows = -(-len(samples) // cols)
    sheet = Image.new(mode, (cols * cell, rows * cell), 128 if mode == "L" else (128,) * 3)
    for i, s in enumerate(samples):
        thumb = s.image.convert(mode).resize((cell - 2, cell - 2), Image.Resampling.BOX)
        sheet.paste(thumb, ((i % cols) * cell + 1, (i // cols) * cell + 1))
    return sheet


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    contact_sheet(digit_set(200)).save(out / "digits_contact_sheet.png")
