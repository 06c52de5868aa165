"""The web server: a page to draw a digit and watch every layer respond, and a JSON API.

Routes and their answers are here; the limits at the connection (deadlines, header and body
sizes, allowed Host names) are in serve_http.py, the work off the event loop (bounded
thread lanes, large images reduced while decoding) in serve_work.py, the /docs page in
serve_docs.py. Every refusal is a 4xx JSON body {"error": "..."}: 400 malformed or a foreign
Host, 404/405 routing, 408 too slow, 413 too large, 415 not an image, 422 well-formed but
unusable (wrong shape, no digit), 431 headers too large; 503 when the server is full.
fastapi and uvicorn are imported only by these modules, and they only when serving.
"""

from __future__ import annotations

import copy
import errno
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from mnist_cnn.checkpoint import read_meta
from mnist_cnn.errors import (
    ImageError,
    ImageTooLargeError,
    NoDigitError,
    UnsupportedImageError,
    UsageError,
)
from mnist_cnn.predict import Predictor
from mnist_cnn.serve_docs import docs_page
from mnist_cnn.serve_http import AllowedHosts, Guard, Limits, Refused
from mnist_cnn.serve_work import PIXELS_SHAPE, ROUND, Work

MAX_BODY_BYTES = Limits.max_body_bytes
WEB_DIR = Path(__file__).parent / "web"
INFERENCE_THREADS = 1  # one 28x28 image is too small to share out: 1 thread is ~4x faster
OPTIONS_ENV = "MNIST_CNN_SERVE"  # how worker processes learn the run, hosts and limits


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
    model_info = _model_info(predictor, layers)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

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

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi(), str(request.base_url).rstrip("/"), limits))

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


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
        "meta": meta,
        "metrics": meta.get("metrics", {}),
        "layers": [{"name": o.name, "kind": o.kind, "shape": list(o.shape)} for o in layers],
        "conv1_filters": np.round(predictor.conv1_filters().astype(np.float64), ROUND).tolist(),
    }


# --- running it -------------------------------------------------------------------------


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or UsageError with one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses
    try:
        infos = socket.getaddrinfo(host or None, port, family, socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host!r}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use; choose another with --port"
                             ) from None
        raise UsageError(f"cannot listen on {host} port {port}: {exc.strerror or exc}"
                         ) from None
    return sock


def url_of(sock: socket.socket) -> str:
    """The address a browser opens for a listening socket."""
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # every interface: this one
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def app_from_env() -> FastAPI:
    """The app for one uvicorn worker process, from $MNIST_CNN_SERVE (run, hosts, limits)."""
    import json
    import os

    import torch

    options = json.loads(os.environ[OPTIONS_ENV])
    torch.set_num_threads(INFERENCE_THREADS)
    hosts = AllowedHosts(options["host"], tuple(options["allowed_hosts"]))
    return create_app(Predictor.from_run(options["run"]), Limits(**options["limits"]), hosts)


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          allowed_hosts: tuple[str, ...] = (), limits: Limits | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Listen on host:port, load the run's model and serve the page and API until
    interrupted. The port is taken before the model loads, so a port in use is one
    UsageError; `on_ready(url)` is called once the server is about to answer.

    With `workers` > 1, uvicorn runs that many processes, each with its own copy of the
    model (inference is one thread each), so concurrent requests use every core.
    """
    import json
    import os

    import torch
    import uvicorn

    limits = limits or Limits()
    read_meta(run_dir)  # a missing run is named first: cheap, before taking the port
    sock = listen(host, port)
    torch.set_num_threads(INFERENCE_THREADS)
    try:
        predictor = Predictor.from_run(run_dir)  # a bad run fails here, before any worker
    except BaseException:
        sock.close()
        raise
    url = url_of(sock)
    if workers <= 1:
        app = create_app(predictor, limits, AllowedHosts(host, tuple(allowed_hosts)))
        server = uvicorn.Server(uvicorn_config(app, limits, log_config=_log_config()))
        if on_ready:
            on_ready(url)
        server.run(sockets=[sock])
        return
    os.environ[OPTIONS_ENV] = json.dumps({"run": str(Path(run_dir).resolve()), "host": host,
                                          "allowed_hosts": list(allowed_hosts),
                                          "limits": asdict(limits)})
    port = sock.getsockname()[1]
    sock.close()  # uvicorn binds it again at once, for the processes it starts
    if on_ready:
        on_ready(url)
    uvicorn.run("mnist_cnn.serve:app_from_env", factory=True, host=host, port=port,
                workers=workers, **_config_options(limits), log_config=_log_config())


def uvicorn_config(app: Any, limits: Limits, **options: Any) -> Any:
    """uvicorn's Config for `app` with the guarded protocol and the limits."""
    import uvicorn

    return uvicorn.Config(app, **{**_config_options(limits), **options})


def _config_options(limits: Limits) -> dict[str, Any]:
    return {"http": "mnist_cnn.serve_http:GuardedProtocol",
            "timeout_keep_alive": limits.keep_alive_seconds,
            "proxy_headers": False,  # nothing in front of it: the client is the peer
            "log_level": None}


def _log_config() -> dict[str, Any]:
    """uvicorn's logging with its start-up lines silenced (the CLI says where to go); the
    access log and warnings stay."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    return config


@contextmanager
def background_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                      timeout: float = 15.0) -> Iterator[str]:
    """Run `app` on uvicorn (the guarded protocol, the app's limits) in a thread (port 0:
    a free one); yields the base URL. For tests and benchmarks that need a real server on
    the loopback interface."""
    import uvicorn

    sock = listen(host, port)
    limits = app.state.limits if isinstance(getattr(app.state, "limits", None), Limits) \
        else Limits()
    server = uvicorn.Server(uvicorn_config(app, limits, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()

