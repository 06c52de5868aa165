"""preprocess.py: a person's image -> MNIST's 28x28, and the decoder's limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from mnist_cnn import preprocess
from mnist_cnn.errors import ImageError, MnistCnnError, NoDigitError
from mnist_cnn.preprocess import decode_image, prepare_file, sniff_format, to_mnist


def drawn(
    shape: str = "7", side: int = 300, at: tuple[int, int] = (150, 150), scale: float = 1.0,
    dark_ink: bool = True, width: int = 14,
) -> Image.Image:
    """A digit-like drawing: "7", "1" (a vertical stroke) or "0" (an ellipse)."""
    paper, ink = (255, 20) if dark_ink else (10, 240)
    img = Image.new("L", (side, side), paper)
    d = ImageDraw.Draw(img)
    x, y, s = at[0], at[1], 50 * scale
    if shape == "1":
        d.line([(x, y - 2 * s), (x, y + 2 * s)], fill=ink, width=width)
    elif shape == "0":
        d.ellipse([x - s, y - 1.6 * s, x + s, y + 1.6 * s], outline=ink, width=width)
    else:
        d.line([(x - s, y - 1.6 * s), (x + s, y - 1.6 * s), (x - 0.2 * s, y + 1.6 * s)],
               fill=ink, width=width, joint="curve")
    return img


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def com(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    ys, xs = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    return np.array([(a * ys).sum(), (a * xs).sum()]) / a.sum()


def ink_box(a: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


# --- geometry: polarity, box, centre of mass -------------------------------------------


def test_output_is_mnist_format_light_ink_on_black():
    out = to_mnist(drawn("7"))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255
    assert out[0].max() == 0 and out[:, 0].max() == 0  # the frame stays black
    assert np.median(out) == 0


def test_polarity_dark_on_light_and_light_on_dark_agree():
    dark, light = to_mnist(drawn("7", dark_ink=True)), to_mnist(drawn("7", dark_ink=False))
    assert np.median(dark) == 0 and np.median(light) == 0
    assert similarity(dark, light) > 0.95


@pytest.mark.parametrize("at", [(60, 70), (240, 230), (150, 150), (70, 240)])
def test_centre_of_mass_is_at_the_centre_wherever_the_digit_was(at):
    out = to_mnist(drawn("7", at=at, scale=0.6, width=8))
    assert np.all(np.abs(com(out) - 14.0) <= 0.5)


def test_longer_side_is_20_px_and_aspect_is_kept():
    tall = to_mnist(drawn("0"))  # an ellipse 100 x 160 px, plus the pen
    h, w = ink_box(tall)
    assert h == 20 and 11 <= w <= 15
    wide = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(wide).rectangle([50, 180, 350, 240], fill=0)  # 301 x 61: a dash
    h, w = ink_box(to_mnist(wide))
    assert w == 20 and 3 <= h <= 6


def test_small_digit_on_a_large_canvas_fills_the_box():
    out = to_mnist(drawn("7", side=2000, at=(1700, 300), scale=0.5, width=6))
    assert max(ink_box(out)) == 20
    assert (out > 128).sum() > 25  # a thin pen is thickened, not faded to grey


def test_shadow_and_paper_texture_are_removed():
    clean = to_mnist(drawn("7"))
    rng = np.random.default_rng(0)
    photo = np.asarray(drawn("7"), dtype=np.float32)
    ramp = np.linspace(0, 110, 300, dtype=np.float32)[None, :]  # light falls off to the right
    photo = np.clip(photo - ramp + rng.normal(0, 8, photo.shape), 0, 255).astype(np.uint8)
    out = to_mnist(photo)
    assert similarity(clean, out) > 0.9
    assert (out[clean == 0] > 64).mean() < 0.02  # no shadow or grain left as ink


def test_a_hard_edged_shadow_is_not_ink():
    img = drawn("7", side=400, at=(260, 200))
    shade = np.asarray(img, dtype=np.int16)
    shade[:, :120] -= 45  # the left third in the shadow of a hand, with a sharp edge
    out = to_mnist(np.clip(shade, 0, 255).astype(np.uint8))
    assert similarity(out, to_mnist(drawn("7", side=400, at=(260, 200)))) > 0.95


def test_a_speck_of_dust_does_not_stretch_the_box():
    img = drawn("7", at=(120, 150))
    ImageDraw.Draw(img).ellipse([280, 285, 284, 289], fill=0)
    assert similarity(to_mnist(img), to_mnist(drawn("7", at=(120, 150)))) > 0.95


def test_transparent_canvas_keeps_its_ink():
    ink = np.asarray(drawn("7", dark_ink=False))  # alpha carries the stroke
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink
    out = to_mnist(Image.fromarray(rgba, "RGBA"))
    assert similarity(out, to_mnist(drawn("7"))) > 0.95


def test_arrays_in_0_1_and_rgb_are_accepted():
    gray = np.asarray(drawn("0"), dtype=np.float32) / 255
    rgb = np.stack([np.asarray(drawn("0"))] * 3, axis=-1)
    assert similarity(to_mnist(gray), to_mnist(rgb)) > 0.99


# --- MNIST itself passes through --------------------------------------------------------


def test_mnist_images_pass_through_unchanged(mnist):
    for image in mnist[1][0][:300]:  # the first 300 test images
        assert np.array_equal(to_mnist(image), image)
        assert np.array_equal(to_mnist(Image.fromarray(image)), image)


def test_mnist_style_but_dark_on_light_28x28_is_processed():
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 12:16] = 255  # a centred "1", MNIST-style
    assert np.array_equal(to_mnist(img), img)
    inverted = to_mnist(255 - img)  # a dark-on-light 28x28 is not MNIST-style: it is inverted
    assert inverted[0, 0] == 0 and inverted[14, 14] == 255


# --- blank images -----------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: np.full((200, 200), 255, np.uint8),
    lambda: np.zeros((28, 28), np.uint8),
    lambda: np.full((64, 64), 140, np.uint8),
    lambda: np.clip(np.random.default_rng(1).normal(200, 12, (300, 300)), 0, 255),
    lambda: np.tile(np.linspace(90, 250, 400), (400, 1)),  # only a shadow
    lambda: np.clip(np.tile(np.linspace(90, 250, 400), (400, 1))
                    + np.random.default_rng(2).normal(0, 6, (400, 400)), 0, 255),
])
def test_blank_images_are_no_digit(make):
    with pytest.raises(NoDigitError, match="no digit found"):
        to_mnist(make())


# --- decoding: formats by magic bytes, EXIF, GIF, limits ------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_format_decodes_by_its_magic_bytes(fmt, tmp_path):
    data = encoded(drawn("1").convert("RGB"), fmt)
    assert sniff_format(data) == fmt
    path = tmp_path / "digit.txt"  # the name says nothing; the bytes do
    path.write_bytes(data)
    out = prepare_file(path)
    assert ink_box(out)[0] == 20 and ink_box(out)[1] <= 8


def test_exif_orientation_is_applied():
    img = Image.new("L", (120, 40), 255)  # stored landscape ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... shown rotated 90 degrees clockwise
    decoded = decode_image(encoded(img, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (40, 120)


def test_gif_first_frame_is_used():
    frames = [drawn("1"), drawn("1").rotate(90)]  # a vertical stroke, then a horizontal one
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    h, w = ink_box(to_mnist(decode_image(data)))
    assert h == 20 and w < 8


@pytest.mark.parametrize("data", [
    b"", b"hello, I am not an image", b"%PDF-1.4\n", b"\x00" * 100, b"<svg></svg>",
])
def test_non_images_are_refused(data):
    with pytest.raises(ImageError, match="not an image"):
        decode_image(data)


def test_non_image_renamed_png_is_refused(tmp_path):
    path = tmp_path / "digit.png"
    path.write_text("#!/bin/sh\necho this is a script\n")
    with pytest.raises(ImageError, match="not an image"):
        prepare_file(path)


def test_truncated_image_is_refused():
    data = encoded(drawn("7"), "PNG")
    with pytest.raises(ImageError, match="cannot decode"):
        decode_image(data[: len(data) // 2])


def bomb_png(width: int, height: int) -> bytes:
    """A PNG of a few kilobytes that decodes to width*height pixels."""
    return encoded(Image.new("1", (width, height), 0), "PNG", optimize=True)


def test_decompression_bomb_is_refused_before_decoding(monkeypatch):
    data = bomb_png(6000, 4001)  # 24,006,000 pixels: just over the cap
    assert len(data) < 100_000
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a bomb"))
    with pytest.raises(ImageError, match="too large"):
        decode_image(data)


def test_pixel_cap_boundary():
    side_w, side_h = 6000, 4000  # exactly MAX_IMAGE_PIXELS
    assert side_w * side_h == preprocess.MAX_IMAGE_PIXELS
    preprocess.check_pixel_count(side_w, side_h)
    with pytest.raises(ImageError, match="too large"):
        preprocess.check_pixel_count(side_w, side_h + 1)


def test_pils_own_bomb_guard_is_an_image_error(monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", 10**12)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for pixels in (1500, 3000):  # a warning (under twice PIL's limit), then an error
        with pytest.raises(ImageError, match="too large"):
            decode_image(bomb_png(pixels, 1))


def test_file_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", 10)
    path = tmp_path / "a.png"
    path.write_bytes(encoded(drawn("1"), "PNG"))
    with pytest.raises(ImageError, match="too large"):
        prepare_file(path)
    with pytest.raises(ImageError, match="cannot read"):
        prepare_file(tmp_path / "missing.png")


@pytest.mark.parametrize("bad", [
    np.zeros((5, 5, 2)), np.zeros((0, 10)), np.zeros((2, 2, 2, 2)),
    np.full((28, 28), np.nan), np.full((28, 28), -3.0), np.full((28, 28), 300.0),
    np.array([["a", "b"]]),
])
def test_unusable_arrays_are_image_errors(bad):
    with pytest.raises(ImageError):
        to_mnist(bad)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.integers(0, 2**32 - 1))
def test_any_image_gives_a_digit_or_a_clear_error(h, w, seed):
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w)) < rng.random()) * rng.integers(0, 256)
    try:
        out = to_mnist(img.astype(np.uint8))
    except MnistCnnError:
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8


# --- robustness: a trained model on digits that are not from MNIST -----------------------


@pytest.mark.slow
def test_rendered_human_like_digits_are_recognised(trained_run):
    """>= 95% on 600 rendered digits with preprocessing; a naive resize does far worse."""
    from digits import digit_set, naive_28
    from mnist_cnn.predict import Predictor

    predictor = Predictor.from_run(trained_run)
    samples = digit_set(600, seed=1234)
    labels = np.array([s.label for s in samples])
    ours = predictor.probabilities(np.stack([to_mnist(s.image) for s in samples]))
    naive = predictor.probabilities(np.stack([naive_28(s.image) for s in samples]))
    accuracy = float((ours.argmax(axis=1) == labels).mean())
    naive_accuracy = float((naive.argmax(axis=1) == labels).mean())
    assert accuracy >= 0.95, f"accuracy with preprocessing {accuracy:.3f}"
    assert naive_accuracy < accuracy - 0.3, f"naive {naive_accuracy:.3f} vs {accuracy:.3f}"
