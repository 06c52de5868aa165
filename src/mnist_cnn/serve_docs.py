"""The /docs page: each endpoint (method, path, what it does) with a curl command that works
against this server as it was reached. One self-contained HTML page: no script, no CDN."""

from __future__ import annotations

import base64
import hashlib
import html

from mnist_cnn.preprocess import MAX_IMAGE_PIXELS
from mnist_cnn.serve_http import Limits

# Routes the schema leaves out (not part of the JSON API), then what each route says beyond
# its one-line summary, and the commands that show it; {base} is the server's own URL.
PAGES = [("GET", "/", "The page: draw a digit or upload a photo, and watch every layer respond"),
         ("GET", "/model.js", "The model (architecture and weights) for the page, which runs "
                              "it in the browser"),
         ("GET", "/docs", "This page"),
         ("GET", "/openapi.json", "The API's machine-readable schema (OpenAPI)")]
DETAILS = {
    ("GET", "/"): "Open it in a browser; it loads nothing from other sites.",
    ("POST", "/api/predict"):
        "Send one image: a multipart upload with a field named <code>file</code>; raw image "
        "bytes (PNG, JPEG, WebP, BMP or GIF; the format is read from the bytes); or JSON, "
        "either <code>{\"image\": \"&lt;base64 or data: URL&gt;\"}</code> or "
        "<code>{\"pixels\": [[...], ...]}</code> with 28 rows of 28 numbers 0..255 (or 0..1), "
        "light ink on black as in MNIST. The image is prepared the way MNIST was made. The "
        "answer: <code>label</code>, ten <code>probabilities</code> and the 28x28 "
        "<code>input</code> the network saw; with <code>?activations=1</code> (or "
        "<code>\"activations\": true</code> in JSON) also every layer's output.",
    ("GET", "/api/model"):
        "JSON with <code>summary</code> (the Keras-style table as text), <code>meta</code> "
        "(the run's model.json), <code>metrics</code> (test loss and accuracy), "
        "<code>layers</code> (each layer's name, kind and output shape) and "
        "<code>conv1_filters</code> (the first convolution's 3x3 kernels).",
    ("GET", "/healthz"): "Answers <code>{\"status\": \"ok\"}</code> while the process runs.",
    ("GET", "/readyz"): "Answers <code>{\"status\": \"ready\"}</code> once the model has "
                        "answered a warm-up prediction; 503 before.",
}
EXAMPLES = {
    ("GET", "/"): ["curl {base}/"],
    ("GET", "/model.js"): ["curl {base}/model.js"],
    ("GET", "/docs"): ["curl {base}/docs"],
    ("GET", "/openapi.json"): ["curl {base}/openapi.json"],
    ("POST", "/api/predict"): [
        "curl -F file=@digit.png {base}/api/predict",
        "curl --data-binary @digit.png -H 'Content-Type: image/png' "
        "'{base}/api/predict?activations=1'",
        "curl -H 'Content-Type: application/json' -d @pixels.json {base}/api/predict",
    ],
    ("GET", "/api/model"): ["curl {base}/api/model"],
    ("GET", "/healthz"): ["curl {base}/healthz"],
    ("GET", "/readyz"): ["curl {base}/readyz"],
}
STYLE = ("body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;"
         "padding:0 1rem;color:#222}h2{font-size:1.1rem;margin-top:2rem}"
         "h2 code{background:#eef;padding:.1rem .4rem;border-radius:.2rem}"
         "pre{background:#f4f4f4;padding:.6rem;overflow-x:auto;border-radius:.2rem}"
         "code{font-family:ui-monospace,monospace}")


# The page's one inline stylesheet, allowed by its hash (the server's CSP forbids others).
CSP = ("default-src 'none'; style-src 'sha256-"
       + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'; "
       "base-uri 'none'; form-action 'none'")


def endpoints(schema: dict) -> list[tuple[str, str, str]]:
    """(method, path, summary) of every route: the API's from its schema, then the pages."""
    api = [(method.upper(), path, op.get("summary", ""))
           for path, ops in schema.get("paths", {}).items() for method, op in ops.items()]
    return api + PAGES


def docs_page(schema: dict, base: str, limits: Limits | None = None) -> str:
    """The page for a server reached at `base` (e.g. http://127.0.0.1:8000)."""
    limits = limits or Limits()
    sections = [_section(method, path, summary, base)
                for method, path, summary in endpoints(schema)]
    notes = (f"Limits: a request body of at most {limits.max_body_bytes:,} bytes, an image "
             f"of at most {MAX_IMAGE_PIXELS:,} pixels. Every error is JSON, "
             "<code>{\"error\": \"...\"}</code>, with a 4xx status (503 when the server is "
             "busy: try again). The curl commands expect a <code>digit.png</code> (any "
             "photo or drawing of a digit) or a <code>pixels.json</code> in the current "
             "folder.")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>mnist-cnn API</title><style>{STYLE}</style></head><body>"
            f"<h1>mnist-cnn API</h1><p>{html.escape(schema['info'].get('description', ''))}"
            f"</p><p>{notes}</p>{''.join(sections)}</body></html>")


def _section(method: str, path: str, summary: str, base: str) -> str:
    detail = DETAILS.get((method, path), "")
    commands = "".join(f"<pre><code class='curl'>{html.escape(c.format(base=base))}"
                       "</code></pre>" for c in EXAMPLES.get((method, path), []))
    return (f"<section><h2><code>{method} {html.escape(path)}</code></h2>"
            f"<p>{html.escape(summary)}.{' ' + detail if detail else ''}</p>{commands}"
            "</section>")
