"""Running the web app (serve_app.py) on uvicorn: `mnist-cnn serve`, and a server in a
thread for tests and benchmarks.

The port is taken before the model loads, so a port in use is one line, not a model load
and uvicorn's log. uvicorn speaks HTTP through serve_http.GuardedProtocol (deadlines and
size caps it lacks) and logs only warnings and the access log; the CLI says where to go.
fastapi and uvicorn are imported only by the serve modules, and they only when serving.
"""

from __future__ import annotations

import copy
import errno
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from mnist_cnn.checkpoint import read_meta
from mnist_cnn.errors import UsageError
from mnist_cnn.predict import Predictor
from mnist_cnn.serve_app import create_app
from mnist_cnn.serve_http import AllowedHosts, Limits

__all__ = ["MAX_BODY_BYTES", "create_app", "listen", "serve"]
MAX_BODY_BYTES = Limits.max_body_bytes
INFERENCE_THREADS = 1  # one 28x28 image is too small to share out: 1 thread is ~4x faster
OPTIONS_ENV = "MNIST_CNN_SERVE"  # how worker processes learn the run, hosts and limits


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
        _when_answering(url, on_ready)
    uvicorn.run("mnist_cnn.serve:app_from_env", factory=True, host=host, port=port,
                workers=workers, **_config_options(limits), log_config=_log_config())


def _when_answering(url: str, on_ready: Callable[[str], None], timeout: float = 600) -> None:
    """Call on_ready(url) from a thread once the port accepts connections (uvicorn's worker
    processes take seconds to load the model; until then a browser would be refused)."""
    parts = urlsplit(url)

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((parts.hostname, parts.port), timeout=1):
                    return on_ready(url)
            except OSError:
                time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()


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
