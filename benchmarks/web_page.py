"""The draw-a-digit page in the browser: the size of the exported folder, how the weights
travel, and how long the in-browser work takes.

    python benchmarks/web_page.py RUN_DIR [--repeats 200]

Exports RUN_DIR with `export_web` to a temporary folder, opens it from file:// in Debian's
Chromium (headless, through Playwright) and measures with performance.now() inside the page:

- weights transport: decoding model.js's base64 safetensors into Float32Arrays, against
  JSON.parse of the same weights written as JSON number arrays (the other way to embed them);
- the network's forward pass for one MNIST test digit (every layer's output kept);
- the page's saliency for that digit (gradient.js): gradient x input (one forward and one
  backward pass) and integrated gradients with 32 steps (33 of each), as the page computes
  it after every drawing (fewer repeats: --saliency-repeats);
- the browser's preprocessing (preprocess.js) of a 280x280 drawing on the pad;
- the whole page update for one drawing: preprocessing, forward pass and every picture.

Prints the sizes and the median (and min/max) of each timing; results are recorded in
docs/BENCHMARKS.md ("The page in the browser").
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Each timing script returns a list of milliseconds, one per repeat.
TIMINGS = {
    "decode base64 safetensors": """(n) => { const t = [];
        for (let i = 0; i < n; i++) { const t0 = performance.now();
          MnistEngine.readSafetensors(MnistEngine.decodeBase64(MNIST_MODEL.weights));
          t.push(performance.now() - t0); } return t; }""",
    "JSON.parse number arrays": """([n, text]) => { const t = [];
        for (let i = 0; i < n; i++) { const t0 = performance.now();
          const parsed = JSON.parse(text);
          for (const k in parsed) parsed[k] = Float32Array.from(parsed[k]);
          t.push(performance.now() - t0); } return t; }""",
    "forward pass, one digit": """([n, digit]) => {
        const x = Float32Array.from(digit, (v) => v / 255), t = [];
        for (let i = 0; i < n; i++) { const t0 = performance.now();
          MnistEngine.forward(mnistPage.model, x); t.push(performance.now() - t0); } return t; }""",
    "saliency: gradient x input": """([n, digit]) => {
        const x = Float32Array.from(digit, (v) => v / 255), t = [];
        for (let i = 0; i < n; i++) { const t0 = performance.now();
          MnistGradient.gradientXInput(mnistPage.model, x); t.push(performance.now() - t0); }
        return t; }""",
    "saliency: integrated gradients, 32": """([n, digit]) => {
        const x = Float32Array.from(digit, (v) => v / 255), t = [];
        for (let i = 0; i < n; i++) { const t0 = performance.now();
          MnistGradient.integratedGradients(mnistPage.model, x, 32);
          t.push(performance.now() - t0); } return t; }""",
    "preprocess a 280x280 drawing": """(n) => { const pad = document.getElementById('pad');
        const image = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height);
        const t = []; for (let i = 0; i < n; i++) { const t0 = performance.now();
          MnistPreprocess.toMnist(image); t.push(performance.now() - t0); } return t; }""",
    "page update for one drawing": """(n) => { const pad = document.getElementById('pad');
        const image = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height);
        const t = []; for (let i = 0; i < n; i++) { const t0 = performance.now();
          mnistPage.classify(image); t.push(performance.now() - t0); } return t; }""",
}


def sizes(folder: Path, run: Path) -> dict[str, int]:
    """Bytes of the export, its model.js (plain and gzip), and the alternatives."""
    from safetensors.torch import load_file

    model_js = (folder / "model.js").read_bytes()
    as_json = numbers_json(run)
    return {
        "export folder": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
        "page code (html, js, css)": sum(p.stat().st_size for p in folder.rglob("*")
                                         if p.is_file() and p.name not in ("model.js",
                                                                           "README.txt")),
        "model.js (base64 safetensors)": len(model_js),
        "model.js, gzip": len(gzip.compress(model_js)),
        "model.safetensors": (run / "model.safetensors").stat().st_size,
        "weights as JSON numbers": len(as_json),
        "weights as JSON numbers, gzip": len(gzip.compress(as_json.encode())),
        "parameters": sum(t.numel() for t in load_file(str(run / "model.safetensors")).values()),
    }


def numbers_json(run: Path) -> str:
    """The weights as JSON arrays of float32 values (shortest round-trip text of each)."""
    import numpy as np
    from safetensors.numpy import load_file

    tensors = load_file(str(run / "model.safetensors"))
    return json.dumps({k: [float(np.format_float_positional(v, unique=True, trim="-"))
                           for v in t.ravel()] for k, t in tensors.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--saliency-repeats", type=int, default=25)
    args = parser.parse_args()
    print("load average at the start", *os.getloadavg())

    from playwright.sync_api import sync_playwright

    from mnist_cnn.data import load_data
    from mnist_cnn.export_web import export_web

    digit = load_data("mnist")[1][0][0].ravel().tolist()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        folder = export_web(args.run, Path(tmp) / "site")
        for name, value in sizes(folder, args.run).items():
            print(f"{name:34s} {value:>10,}")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((folder / "index.html").as_uri())
        while not page.evaluate("Boolean(window.mnistPage && mnistPage.ready)"):
            page.wait_for_timeout(50)  # the page's CSP refuses wait_for_function's eval
        ready = page.evaluate("mnistPage.readyMs")  # from navigation to a usable page
        print(f"{'page ready (ms after navigation)':34s} {ready:>10.1f}")
        page.locator("#example").click()  # a drawing on the pad (the example 0)
        inputs = {"JSON.parse number arrays": [args.repeats, numbers_json(args.run)],
                  "forward pass, one digit": [args.repeats, digit],
                  "saliency: gradient x input": [args.repeats, digit],
                  "saliency: integrated gradients, 32": [args.saliency_repeats + 2, digit]}
        for name, script in TIMINGS.items():
            warm = 2 if name.endswith(", 32") else 5
            ms = page.evaluate(script, inputs.get(name, args.repeats))[warm:]  # after warm-up
            print(f"{name:34s} median {statistics.median(ms):7.2f} ms  "
                  f"(min {min(ms):.2f}, max {max(ms):.2f}, {len(ms)} runs)")
        print("chromium", browser.version)
        print("load average at the end", *os.getloadavg())
        browser.close()


if __name__ == "__main__":
    main()
