"""A real server on the loopback interface, for the tests that need one: uvicorn with the
product's guarded protocol and the app's limits, in a thread, on a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from mnist_cnn.serve import listen, url_of, uvicorn_config
from mnist_cnn.serve_http import Limits


@contextmanager
def background_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                      timeout: float = 15.0) -> Iterator[str]:
    """Run `app` on uvicorn (the guarded protocol, the app's limits) in a thread (port 0:
    a free one); yields the base URL."""
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

