"""The web server: a page to draw a digit and watch every layer respond, and a JSON API.

    GET  /                 the page (web/), all assets local: it works offline
    GET  /model.js         the model for the page, which runs it in the browser
    POST /api/predict      JSON {"pixels": 28x28} or {"image": base64}, a multipart upload
                           ("file"), or raw image bytes -> label, probabilities, the 28x28
                           input; every layer's output with ?activations=1
    GET  /api/model        summary table, model.json, metrics, layers, conv1's filters
    GET  /healthz, /readyz liveness; readiness (the model answered a warm-up request)
    GET  /docs             the API's endpoints from /openapi.json (a local page, no CDN)

Limits are checked before any work: the body (Content-Length, then the bytes as they
stream in), the image format (magic bytes), the decoded pixels (from the header).
Every bad request is a 4xx JSON body {"error": "..."}: 400 malformed, 404/405 routing,
413 too large, 415 not an image, 422 well-formed but unusable (wrong shape, no digit).
fastapi and uvicorn are imported only here, and this module only when serving.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnist_cnn.errors import (
    ImageError,
    ImageTooLargeError,
    NoDigitError,
    UnsupportedImageError,
)
from mnist_cnn.export_web import model_script
from mnist_cnn.predict import Predictor
from mnist_cnn.preprocess import decode_image, to_mnist

MAX_BODY_BYTES = 2 * 1024 * 1024  # a phone photo re-encoded by the page fits; more is refused
WEB_DIR = Path(__file__).parent / "web"
PIXELS_SHAPE = (28, 28)  # {"pixels": ...} is the network's own input size, nothing else
ROUND = 4  # decimals in activations: enough for a picture, a quarter of the bytes
INFERENCE_THREADS = 1  # one 28x28 image is too small to share out: 1 thread is ~4x faster
SECURITY_HEADERS = [  # the page loads nothing from elsewhere, and says so to the browser
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class BadRequest(Exception):
    """A request we can name the fault of; carries its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Guard:
    """ASGI middleware: refuse bodies over MAX_BODY_BYTES (by Content-Length before reading,
    and by counting the bytes as they arrive), and add the security headers."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _error(413, self._too_large())(scope, receive, send)
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BadRequest(413, self._too_large())
            return message

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, counted, with_headers)

    def _too_large(self) -> str:
        return f"request body too large: the limit is {self.limit:,} bytes"


def create_app(predictor: Predictor) -> FastAPI:
    """The FastAPI app around one loaded model."""
    app = FastAPI(title="mnist-cnn", version="1", docs_url=None, redoc_url=None,
                  description="Draw a digit, see what each layer of the lesson's CNN sees.")
    app.add_middleware(_Guard)
    _add_error_handlers(app)
    layers = predictor.activations(np.zeros(PIXELS_SHAPE, np.uint8))  # also a warm-up
    app.state.ready = bool(np.isfinite(layers[-1].values).all())
    model_info = _model_info(predictor, layers)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    @app.post("/api/predict", summary="Predict the digit in a drawing, photo or 28x28 pixels")
    async def predict(request: Request, activations: bool = False) -> JSONResponse:
        image, asked = await _read_image(request)
        digit = to_mnist(image)
        return JSONResponse(_prediction(predictor, digit, activations or asked))

    script = model_script(predictor.model, predictor.meta, server=True)

    @app.get("/model.js", include_in_schema=False)  # the page runs the model in the browser
    def model_js() -> Response:
        return Response(script, media_type="text/javascript")

    @app.get("/api/model", summary="Summary table, metadata, metrics, layers, conv1 filters")
    def model() -> dict:
        return model_info

    @app.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and answered a warm-up")
    def readyz() -> JSONResponse:
        if not app.state.ready:
            return _error(503, "model not ready")
        return JSONResponse({"status": "ready"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()))

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure becomes {"error": ...} with a 4xx status; none leaks a traceback."""
    statuses = [(ImageTooLargeError, 413), (UnsupportedImageError, 415), (NoDigitError, 422),
                (ImageError, 400)]

    async def image_error(_: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in statuses if isinstance(exc, kind))
        return _error(status, str(exc))

    async def bad_request(_: Request, exc: Exception) -> JSONResponse:
        return _error(exc.status, str(exc))  # type: ignore[attr-defined]

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))  # type: ignore[attr-defined]

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"invalid {where}: {first.get('msg', 'bad value')}")

    app.add_exception_handler(ImageError, image_error)
    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


async def _read_image(request: Request) -> tuple[Any, bool]:
    """The request's image (a PIL image or a pixel array) and whether the body asked for
    activations. JSON, multipart and raw image bodies are accepted."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return _from_json(await request.body())
    if kind == "multipart/form-data":
        return decode_image(await _upload_bytes(request)), False
    if kind.startswith("image/") or kind == "application/octet-stream":
        return decode_image(await request.body()), False
    raise BadRequest(415, "send JSON, a multipart upload or image bytes, not "
                          f"{kind or 'a body without a Content-Type'}")


def _from_json(body: bytes) -> tuple[Any, bool]:
    """{"pixels": 28x28} or {"image": base64 or a data: URL}, with optional "activations"."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise BadRequest(400, f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict) or ("pixels" in payload) == ("image" in payload):
        raise BadRequest(400, 'send an object with either "pixels" or "image"')
    asked = payload.get("activations", False)
    if not isinstance(asked, bool):
        raise BadRequest(400, '"activations" must be true or false')
    if "pixels" in payload:
        return _pixels(payload["pixels"]), asked
    return decode_image(_base64_bytes(payload["image"])), asked


def _pixels(value: Any) -> np.ndarray:
    """A 28x28 grid of numbers 0..255 (or 0..1) as uint8."""
    shape_error = BadRequest(422, '"pixels" must be 28 rows of 28 numbers, 0..255 or 0..1')
    if not isinstance(value, list) or len(value) != PIXELS_SHAPE[0]:
        raise shape_error
    if not all(isinstance(row, list) and len(row) == PIXELS_SHAPE[1] for row in value):
        raise shape_error
    if not all(type(v) in (int, float) for row in value for v in row):  # not bool, not str
        raise shape_error
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise shape_error
    if arr.max() <= 1.0:
        arr = arr * 255
    return np.rint(arr).astype(np.uint8)


def _base64_bytes(value: Any) -> bytes:
    """Bytes from base64 text, with or without a `data:image/...;base64,` prefix."""
    if not isinstance(value, str):
        raise BadRequest(400, '"image" must be a base64 string')
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, '"image" is not valid base64') from None


async def _upload_bytes(request: Request) -> bytes:
    """The bytes of the multipart form's "file" field (or its only file)."""
    try:
        form = await request.form(max_files=1, max_fields=8)
    except StarletteHTTPException:
        raise
    except Exception as exc:  # the multipart parser's own errors: a malformed body
        raise BadRequest(400, f"malformed multipart body: {exc}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise BadRequest(400, 'the multipart form needs a file field named "file"')
    return await upload.read()


def _prediction(predictor: Predictor, digit: np.ndarray, activations: bool) -> dict:
    """The answer for one prepared (28, 28) digit."""
    probs = predictor.probabilities(digit[None])[0]
    result: dict[str, Any] = {
        "label": int(probs.argmax()),
        "probabilities": [round(float(p), 6) for p in probs],
        "input": digit.tolist(),
    }
    if activations:
        result["activations"] = [
            {"name": out.name, "kind": out.kind, "shape": list(out.shape),
             "values": np.round(out.values.astype(np.float64), ROUND).tolist()}
            for out in predictor.activations(digit)
        ]
    return result


def _model_info(predictor: Predictor, layers: list) -> dict:
    """Everything the page shows about the model itself."""
    meta = predictor.meta
    return {
        "summary": predictor.summary_text,
        "meta": meta.to_dict() if meta is not None else {},
        "metrics": meta.metrics if meta is not None else {},
        "layers": [{"name": o.name, "kind": o.kind, "shape": list(o.shape)} for o in layers],
        "conv1_filters": np.round(predictor.conv1_filters().astype(np.float64), ROUND).tolist(),
    }


def _docs_page(schema: dict) -> str:
    """A self-contained list of the API's operations (Swagger UI would need a CDN)."""
    rows = []
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>"
                        f"{html.escape(path)}</code></td><td>"
                        f"{html.escape(op.get('summary', ''))}</td></tr>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mnist-cnn API"
        "</title><link rel='stylesheet' href='/static/style.css'></head><body class='docs'>"
        f"<h1>mnist-cnn API</h1><p>{html.escape(schema['info'].get('description', ''))}</p>"
        "<p>Machine-readable schema: <a href='/openapi.json'>/openapi.json</a> (OpenAPI "
        f"{html.escape(schema.get('openapi', ''))}).</p><table>{''.join(rows)}</table>"
        f"<pre>{html.escape(__doc__ or '')}</pre></body></html>"
    )


RUN_ENV = "MNIST_CNN_SERVE_RUN"  # how worker processes learn which run to load


def app_from_env() -> FastAPI:
    """The app for one uvicorn worker process: the run directory comes from $MNIST_CNN_SERVE_RUN."""
    import os

    import torch

    torch.set_num_threads(INFERENCE_THREADS)
    return create_app(Predictor.from_run(os.environ[RUN_ENV]))


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> None:
    """Load the run's model and serve the page and API until interrupted.

    With `workers` > 1, uvicorn runs that many processes, each with its own copy of the
    model (inference is one thread each), so concurrent requests use every core.
    """
    import os

    import torch
    import uvicorn

    torch.set_num_threads(INFERENCE_THREADS)
    predictor = Predictor.from_run(run_dir)  # a bad run fails here, before any worker starts
    if workers <= 1:
        uvicorn.run(create_app(predictor), host=host, port=port, log_level="info")
        return
    os.environ[RUN_ENV] = str(Path(run_dir).resolve())
    uvicorn.run("mnist_cnn.serve:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="info")


@contextmanager
def background_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                      timeout: float = 15.0) -> Iterator[str]:
    """Run `app` on uvicorn in a thread (port 0: a free one); yields the base URL.
    For tests and benchmarks that need a real server on the loopback interface."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
