"""A person's image -> an MNIST-style 28x28 digit, made the way MNIST itself was made.

MNIST digits are light ink on a black background; each was scaled so its longer side is
20 px (antialiased, aspect kept) and placed in a 28x28 field with its centre of mass at the
centre. A network trained on MNIST only understands digits prepared the same way, so every
entry point (CLI, web server, tests) goes through `to_mnist`.

Pipeline: bytes -> `decode_image` (format by magic bytes, pixel cap, EXIF orientation)
-> grayscale -> polarity -> paper/shadow removal -> crop to ink -> 20 px box -> centre of mass.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from mnist_cnn.errors import ImageError, ImageTooLargeError, NoDigitError, UnsupportedImageError

MAX_IMAGE_PIXELS = 24_000_000  # width*height, read from the header before decoding: a 12 MP
#                                phone photo fits twice over; a decompression bomb does not
MAX_FILE_BYTES = 32 * 1024 * 1024  # prepare_file refuses larger files before reading them
WORK_SIDE = 512  # larger images are reduced first: enough detail for a 20 px digit, fast
MNIST_SIDE = 28  # the field
DIGIT_BOX = 20  # the digit's longer side inside the field
MNIST_CENTRE = 14.0  # MNIST's centres of mass lie at 14.0 +- 0.5 (pixel-index coordinates,
#                      measured on the 10k test set), so we aim there, not at 13.5
MIN_CONTRAST = 0.08  # ink must differ from the paper by 8% of full scale to count as ink
NOISE_SIGMAS = 6.0  # ... and by this many standard deviations of the paper's texture
MIN_INK_PIXELS = 5  # fewer such pixels is a speck, not a digit
STROKE_WIDTH = 1.85  # MNIST's median stroke width in px (2*area/edges of pixels >= 128)
_FIT_SCALE = 4  # strokes are measured and thickened at 4x the final size

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


def sniff_format(data: bytes) -> str:
    """The image format named by the data's first bytes; the file name is never trusted."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise UnsupportedImageError("not an image: expected PNG, JPEG, WebP, BMP or GIF data")


def decode_image(data: bytes) -> Image.Image:
    """Decode image bytes (first frame of a GIF) with EXIF orientation applied.

    The pixel count comes from the header and is checked before any pixel is decoded.
    Raises ImageError for unknown formats, corrupt data and images over MAX_IMAGE_PIXELS.
    """
    fmt = sniff_format(data)
    try:
        with warnings.catch_warnings():
            # PIL only warns below twice its own limit; a warning here is a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            check_pixel_count(*img.size)
            img.seek(0)  # a GIF's or WebP's first frame
            img.load()
            return ImageOps.exif_transpose(img) or img
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot decode the {fmt} image: damaged or truncated") from exc
    except Exception as exc:  # any failure on untrusted bytes is a bad image, not a bug
        raise ImageError(f"cannot decode the {fmt} image: {exc}") from exc


def check_pixel_count(width: int, height: int) -> None:
    """Refuse images whose decoded size would exceed MAX_IMAGE_PIXELS."""
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(
            f"image too large: {width}x{height} pixels is over the limit of "
            f"{MAX_IMAGE_PIXELS:,} pixels"
        )


def prepare_file(path: str | Path) -> np.ndarray:
    """Read an image file and return its MNIST-style (28, 28) uint8 digit."""
    from mnist_cnn.files import read_bounded

    # Bounded while reading: st_size is 0 for /dev/zero, and a FIFO is refused, not waited on.
    data = read_bounded(Path(path), MAX_FILE_BYTES, ImageError, "image file",
                        too_large=ImageTooLargeError)
    return to_mnist(decode_image(data))


def to_mnist(img: Image.Image | np.ndarray) -> np.ndarray:
    """Turn a picture of one digit into MNIST's format: (28, 28) uint8, light ink on black.

    Accepts a PIL image or an array (H, W) / (H, W, 3|4), uint8 0..255 or float 0..1.
    An image that already is MNIST-style 28x28 is returned unchanged.
    Raises NoDigitError when there is no ink, ImageError for unusable arrays.
    """
    if isinstance(img, np.ndarray) and img.dtype == np.uint8 and _is_mnist_style(img):
        return img.copy()
    gray = _to_gray(img)
    if gray.shape == (MNIST_SIDE, MNIST_SIDE):
        as_bytes = np.rint(gray * 255).astype(np.uint8)
        if _is_mnist_style(as_bytes):
            return as_bytes
    ink = _ink_map(_shrink(gray))
    digit = _fit_box(_crop_to_ink(ink))
    return _centre_by_mass(digit)


def _is_mnist_style(a: np.ndarray) -> bool:
    """28x28, black background, ink box of 20 px, centre of mass at the centre."""
    if a.shape != (MNIST_SIDE, MNIST_SIDE) or np.median(a) > 8 or not a.any():
        return False
    rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
    longer = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    com = _centre_of_mass(a.astype(np.float64))
    return abs(longer - DIGIT_BOX) <= 1 and bool(np.all(np.abs(com - MNIST_CENTRE) <= 0.75))


def _to_gray(img: Image.Image | np.ndarray) -> np.ndarray:
    """Luminance as float32 (H, W) in 0..1; transparency is flattened onto a contrasting
    background so a canvas bitmap with ink on a transparent page keeps its ink."""
    if isinstance(img, np.ndarray):
        img = _array_to_image(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, dtype=np.float32)
        return a / a.max() if a.max() > 0 else a
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255
        lum = np.asarray(img.convert("RGBA").convert("L"), dtype=np.float32) / 255
        alpha = rgba[..., 3]
        if alpha.min() < 1:
            ink_lum = float((lum * alpha).sum() / max(alpha.sum(), 1e-6))
            page = 1.0 if ink_lum < 0.5 else 0.0  # dark ink goes on white, light on black
            return lum * alpha + page * (1 - alpha)
        return lum
    return np.asarray(img.convert("L"), dtype=np.float32) / 255


def pixels_to_uint8(a: np.ndarray) -> np.ndarray:
    """Pixel values as uint8: 0..255 as they are, and 0..1 (any numbers but uint8 whose
    maximum is at most 1, as a canvas or a normalised tensor gives them) scaled by 255.
    Anything non-finite or outside 0..255 is an ImageError."""
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ImageError(f"pixels must be numbers, got {a.dtype}")
    f = a.astype(np.float64)
    if not np.isfinite(f).all() or f.min() < 0 or f.max() > 255:
        raise ImageError("pixel values must be finite and within 0..255 (or 0..1)")
    if a.dtype != np.uint8 and f.max() <= 1.0:
        f = f * 255
    return np.rint(f).astype(np.uint8)


def _array_to_image(a: np.ndarray) -> Image.Image:
    """An array of pixels (uint8 0..255 or float 0..1/0..255) as a PIL image."""
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ImageError(f"expected an (H, W) or (H, W, 3|4) array of pixels, got {a.shape}")
    check_pixel_count(a.shape[1], a.shape[0])
    return Image.fromarray(pixels_to_uint8(a))


def _shrink(gray: np.ndarray) -> np.ndarray:
    """Reduce so the longer side is at most WORK_SIDE (box filter: an area average)."""
    h, w = gray.shape
    scale = WORK_SIDE / max(h, w)
    if scale >= 1:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(_float_image(gray).resize(size, Image.Resampling.BOX))


def _ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink strength 0..1 with the paper at exactly 0; raises NoDigitError if there is none."""
    paper = float(np.median(_frame(gray)))
    lo, hi = _extremes(gray)
    if max(hi - paper, paper - lo) < MIN_CONTRAST:
        raise NoDigitError("no digit found: the image is blank")
    if paper - lo > hi - paper:  # the strongest marks are darker than the paper: invert
        gray = 1.0 - gray
    ink = np.clip(gray - _background(gray), 0, None)  # shadows and uneven paper removed
    paper, sigma = _paper_stats(ink)  # the paper's level and texture (grain)
    # Ink is found where a 3x3 neighbourhood stands out: strokes are wider than a pixel,
    # grain is not, so averaging lowers the grain's sigma threefold but not the strokes.
    smooth = _box3(ink)
    smooth_paper, smooth_sigma = _paper_stats(smooth)
    strong = ink[smooth > smooth_paper + max(MIN_CONTRAST, NOISE_SIGMAS * smooth_sigma)]
    if strong.size < MIN_INK_PIXELS:
        raise NoDigitError("no digit found: nothing stands out from the background")
    top = float(np.percentile(strong, 99))  # the strongest ink: the pen, not a shadow
    floor = paper + max(3 * sigma, 0.25 * (top - paper))  # paper texture below this is dropped
    return np.clip((ink - floor) / (top - floor), 0, 1).astype(np.float32)


def _frame(a: np.ndarray) -> np.ndarray:
    """The pixels of a band along the image's edges (5% of the shorter side), where people
    rarely write: the paper's statistics come from here, as a bold digit may cover more
    than half of the image."""
    m = max(1, min(a.shape) // 20)
    return np.concatenate([a[:m].ravel(), a[-m:].ravel(), a[:, :m].ravel(), a[:, -m:].ravel()])


def _paper_stats(a: np.ndarray) -> tuple[float, float]:
    """Median and robust sigma (from the median absolute deviation) of the edge band."""
    edge = _frame(a)
    level = float(np.median(edge))
    return level, max(1.4826 * float(np.median(np.abs(edge - level))), 1 / 255)


def _box3(a: np.ndarray) -> np.ndarray:
    """The mean over each pixel's 3x3 neighbourhood."""
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9


def _extremes(gray: np.ndarray) -> tuple[float, float]:
    """Darkest and brightest 3x3 neighbourhood means: extremes that a lone noisy pixel
    cannot set, yet a digit covering a tiny part of a large canvas still does."""
    mean = _box3(gray)
    return float(mean.min()), float(mean.max())


def _background(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness, ink removed: a low percentile of coarse blocks, then the
    minimum over their 3x3 neighbourhood (so a block inside a thick stroke still reaches
    paper), upsampled smoothly."""
    h, w = gray.shape
    block = max(4, max(h, w) // 8)
    gh, gw = -(-h // block), -(-w // block)
    padded = np.pad(gray, ((0, gh * block - h), (0, gw * block - w)), mode="edge")
    blocks = padded.reshape(gh, block, gw, block).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    grid = np.percentile(blocks, 10, axis=-1)  # not the minimum: grain would drag it down
    g = np.pad(grid, 1, mode="edge")
    grid = np.min([g[i : i + gh, j : j + gw] for i in range(3) for j in range(3)], axis=0)
    smooth = _float_image(grid).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(smooth)


def _crop_to_ink(ink: np.ndarray, trim: float = 0.02) -> np.ndarray:
    """Crop to the ink: start from the box holding all but `trim` of the ink mass at each
    side, then grow it while the ink continues. A speck of dust apart from the digit is left
    out; the digit's own thin tails are kept."""
    bounds = []
    for axis in (1, 0):  # rows, then columns
        profile = ink.sum(axis=axis)
        mass = np.cumsum(profile) / profile.sum()
        lo, hi = int(np.searchsorted(mass, trim)), int(np.searchsorted(mass, 1 - trim))
        inked = profile > 0.02 * profile.max()  # ignores a lone noise pixel in a row
        while lo > 0 and inked[lo - 1]:
            lo -= 1
        while hi < len(profile) - 1 and inked[hi + 1]:
            hi += 1
        bounds.append((lo, hi))
    (r0, r1), (c0, c1) = bounds
    return ink[r0 : r1 + 1, c0 : c1 + 1]


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale so the longer side is DIGIT_BOX px, aspect kept, strokes near MNIST's width."""
    big = _resize(crop, DIGIT_BOX * _FIT_SCALE)
    width = _stroke_width(big > 0.5)
    target = STROKE_WIDTH * _FIT_SCALE
    if width < 0.7 * target:  # a thin pen: thicken, or it fades to grey at 20 px
        big = _morph(big, ImageFilter.MaxFilter, target - width)
    elif width > 1.8 * target:  # a marker: thin it, as MNIST's strokes are rarely that bold
        big = _morph(big, ImageFilter.MinFilter, width - 1.3 * target)
    small = _resize(big, DIGIT_BOX)
    return small / small.max() if small.max() > 0 else small


def _resize(a: np.ndarray, longer: int) -> np.ndarray:
    """Resize (antialiased) so the longer side is `longer` px; the other side at least 1."""
    h, w = a.shape
    scale = longer / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = _float_image(a)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.clip(np.asarray(img.resize(size, resample)), 0, 1)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width: area / (edge length / 2), since a stroke has two sides."""
    edges = np.abs(np.diff(mask, axis=0)).sum() + np.abs(np.diff(mask, axis=1)).sum()
    edges += mask[[0, -1], :].sum() + mask[:, [0, -1]].sum()  # sides on the crop's border
    return 2.0 * float(mask.sum()) / max(float(edges), 1.0)


def _morph(a: np.ndarray, kind: type[ImageFilter.RankFilter], by: float) -> np.ndarray:
    """Grow (MaxFilter) or shrink (MinFilter) strokes by about `by` px in width."""
    size = max(3, 2 * round(by / 2) + 1)  # an odd window widens a stroke by size - 1
    img = _float_image(a).filter(kind(size))
    return np.asarray(img)


def _float_image(a: np.ndarray) -> Image.Image:
    """A mode "F" image of a float array (PIL needs float32, contiguous)."""
    return Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))


def _centre_of_mass(a: np.ndarray) -> np.ndarray:
    """(row, col) centre of mass of a non-negative array."""
    total = a.sum()
    rows = (a.sum(axis=1) * np.arange(a.shape[0])).sum() / total
    cols = (a.sum(axis=0) * np.arange(a.shape[1])).sum() / total
    return np.array([rows, cols])


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place the digit in the 28x28 field with its centre of mass at MNIST's centre
    (whole-pixel shift, as MNIST did, kept inside the field)."""
    h, w = digit.shape
    com = _centre_of_mass(digit)
    top = int(np.clip(round(MNIST_CENTRE - com[0]), 0, MNIST_SIDE - h))
    left = int(np.clip(round(MNIST_CENTRE - com[1]), 0, MNIST_SIDE - w))
    field = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.float32)
    field[top : top + h, left : left + w] = digit
    return np.rint(field * 255).astype(np.uint8)
