"""The web app: a page to draw a digit and watch every layer respond, and a JSON API.

Routes and their answers are here; the limits at the connection (deadlines, header and body
sizes, allowed Host names) are in serve_http.py, the work off the event loop (bounded
thread lanes, large images reduced while decoding) in serve_work.py, the /docs page in
serve_docs.py, and running it all on uvicorn in serve.py. Every refusal is a JSON body
{"error": "..."}: 400 malformed or a foreign Host, 404/405 routing, 408 too slow, 413 too
large, 415 not an image, 422 well-formed but unusable (wrong shape, no digit), 431 headers
too large; 503 when the server is full.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from mnist_cnn.errors import (
    ImageError,
    ImageTooLargeError,
    NoDigitError,
    UnsupportedImageError,
)
from mnist_cnn.export_web import model_script
from mnist_cnn.predict import Predictor
from mnist_cnn.serve_docs import CSP as DOCS_CSP
from mnist_cnn.serve_docs import docs_page
from mnist_cnn.serve_http import AllowedHosts, Guard, Limits, Refused
from mnist_cnn.serve_work import PIXELS_SHAPE, ROUND, Work

WEB_DIR = Path(__file__).parent / "web"


def create_app(predictor: Predictor, limits: Limits | None = None,
               hosts: AllowedHosts | None = None) -> FastAPI:
    """The FastAPI app around one loaded model. Host names allowed by default: the
    loopback ones (127.0.0.1, localhost, [::1])."""
    limits = limits or Limits()
    work = Work(predictor, limits)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        work.close()

    app = FastAPI(title="mnist-cnn", version="1", docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  description="Draw a digit, see what each layer of the lesson's CNN sees.")
    app.state.limits = limits  # GuardedProtocol reads its limits here
    app.state.work = work
    app.add_middleware(Guard, limits=limits, hosts=hosts or AllowedHosts())
    _add_error_handlers(app)
    layers = predictor.activations(np.zeros(PIXELS_SHAPE, np.uint8))  # also a warm-up
    app.state.ready = bool(np.isfinite(layers[-1].values).all())
    _add_api(app, work, _model_info(predictor, layers))
    _add_pages(app, model_script(predictor.model, predictor.meta, server=True), limits)
    return app


def _add_api(app: FastAPI, work: Work, model_info: dict) -> None:
    """The JSON API: predict (answered by `work`), the model, health and readiness."""

    @app.post("/api/predict", summary="Predict the digit in a drawing, photo or 28x28 pixels")
    async def predict(request: Request, activations: bool = False) -> Response:
        kind, body = await _read_body(request)
        return Response(await work.answer(kind, body, activations),
                        media_type="application/json")

    @app.get("/api/model", summary="The model: summary table, metadata, metrics, layers, "
                                   "conv1's filters")
    def model() -> dict:
        return model_info

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and answered a warm-up")
    async def readyz() -> JSONResponse:
        if not app.state.ready:
            return _error(503, "model not ready")
        return JSONResponse({"status": "ready"})


def _add_pages(app: FastAPI, script: str, limits: Limits) -> None:
    """The page, its static files, the model it runs in the browser, and /docs."""

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    @app.get("/model.js", include_in_schema=False)  # the page runs the model in the browser
    def model_js() -> Response:
        return Response(script, media_type="text/javascript")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        page = docs_page(app.openapi(), str(request.base_url).rstrip("/"), limits)
        return HTMLResponse(page, headers={"content-security-policy": DOCS_CSP})

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure becomes {"error": ...}; none leaks a traceback to the client."""
    statuses = [(ImageTooLargeError, 413), (UnsupportedImageError, 415), (NoDigitError, 422),
                (ImageError, 400)]

    async def image_error(_: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in statuses if isinstance(exc, kind))
        return _error(status, str(exc))

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        return _error(exc.status, str(exc))  # type: ignore[attr-defined]

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))  # type: ignore[attr-defined]

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"invalid {where}: {first.get('msg', 'bad value')}")

    async def bug(_: Request, exc: Exception) -> JSONResponse:  # logged by uvicorn as well
        return _error(500, "internal error: the server's log has the details")

    app.add_exception_handler(ImageError, image_error)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, bug)


async def _read_body(request: Request) -> tuple[str, bytes]:
    """("json" or "image", the bytes): JSON, a multipart upload or raw image bytes."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return "json", await request.body()
    if kind == "multipart/form-data":
        return "image", await _upload_bytes(request)
    if kind.startswith("image/") or kind == "application/octet-stream":
        return "image", await request.body()
    raise Refused(415, "send JSON, a multipart upload or image bytes, not "
                       f"{kind or 'a body without a Content-Type'}")


async def _upload_bytes(request: Request) -> bytes:
    """The bytes of the multipart form's "file" field."""
    try:
        form = await request.form(max_files=1, max_fields=8)
    except (StarletteHTTPException, Refused, ClientDisconnect):
        raise
    except Exception as exc:  # the multipart parser's own errors: a malformed body
        raise Refused(400, f"malformed multipart body: {exc}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise Refused(400, 'the multipart form needs a file field named "file"')
    return await upload.read()


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
