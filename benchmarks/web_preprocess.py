"""The browser's preprocessing (web/preprocess.js) against the server's (`to_mnist`), on the
same images: how often the 28x28 digits are identical, how far apart they are otherwise, and
whether the model gives both the same label.

    python benchmarks/web_preprocess.py RUN_DIR [--n 300] [--seed 1234]

The images come from tests/digits.py (pen strokes and fonts, off-centre, on canvases of 56
to 900 px, light or dark ink, uneven light, paper grain, noise, blur): harder than a drawing
on the page's pad, which is the browser code's job. Each image goes to Chromium as PNG bytes,
is decoded onto a canvas, and its pixels go through `MnistPreprocess.toMnist`; Python runs
`to_mnist` on the same PNG. Results are recorded in docs/PREPROCESSING.md.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from digits import digit_set  # noqa: E402
from mnist_cnn.errors import NoDigitError  # noqa: E402
from mnist_cnn.predict import Predictor  # noqa: E402
from mnist_cnn.preprocess import decode_image, to_mnist  # noqa: E402

IN_BROWSER = """async (png) => {
    const bitmap = await createImageBitmap(new Blob([MnistEngine.decodeBase64(png)]));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const g = canvas.getContext('2d');
    g.drawImage(bitmap, 0, 0);
    const image = g.getImageData(0, 0, canvas.width, canvas.height);
    try { return Array.from(MnistPreprocess.toMnist(image)); } catch (err) { return err.message; }
}"""


def png_of(image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from mnist_cnn.export_web import export_web

    predictor = Predictor.from_run(args.run)
    samples = digit_set(args.n, args.seed)
    pairs, both_refused, one_refused = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        folder = export_web(args.run, Path(tmp) / "site")
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto((folder / "index.html").as_uri())
        page.wait_for_function("window.mnistPage && mnistPage.ready")
        for sample in samples:
            png = png_of(sample.image)
            js = page.evaluate(IN_BROWSER, base64.b64encode(png).decode("ascii"))
            try:
                py = to_mnist(decode_image(png))
            except NoDigitError:
                py = None
            if isinstance(js, str) or py is None:
                both_refused += isinstance(js, str) and py is None
                one_refused += isinstance(js, str) != (py is None)
                continue
            pairs.append((np.array(js, np.uint8).reshape(28, 28), py, sample.label))
        browser.close()
    js_digits, py_digits, labels = (np.stack(x) for x in zip(*pairs, strict=True))
    diff = np.abs(js_digits.astype(int) - py_digits).reshape(len(pairs), -1)
    js_labels = predictor.probabilities(js_digits).argmax(1)
    py_labels = predictor.probabilities(py_digits).argmax(1)
    print(f"images: {len(samples)}; both said 'no digit': {both_refused}; only one did: "
          f"{one_refused}")
    print(f"identical 28x28 digits: {(diff.max(1) == 0).sum()} of {len(pairs)}")
    print(f"pixels differing: {(diff > 0).mean():.4%}; by more than 2 levels: "
          f"{(diff > 2).mean():.4%}; largest difference: {diff.max()}")
    print(f"same label from both: {(js_labels == py_labels).mean():.2%}; accuracy: browser "
          f"{(js_labels == labels).mean():.2%}, server {(py_labels == labels).mean():.2%}")


if __name__ == "__main__":
    main()
