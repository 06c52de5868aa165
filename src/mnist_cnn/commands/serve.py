"""`mnist-cnn serve`: the draw-a-digit page and the JSON API for one run."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web page: draw a digit, see what each layer sees",
                       description="Serve the page and the JSON API (/api/predict, "
                       "/api/model, /docs) for one trained run.")
    p.add_argument("run", metavar="RUN", help="run directory (runs/<name>)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own model (default 1; 2 on a "
                        "2-core machine halves the latency under concurrent load)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name (repeatable; '*' for any). "
                        "127.0.0.1, localhost, [::1] and --host are always allowed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn.errors import UsageError

    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    try:
        from mnist_cnn.serve import serve
    except ImportError as exc:  # fastapi/uvicorn are the [web] extra
        raise UsageError(f"serving needs the web extra ({exc.name} is missing): "
                         "pip install 'mnist-cnn[web]'") from None
    if not 1 <= args.workers <= 64:
        raise UsageError("--workers must be between 1 and 64")
    serve(args.run, args.host, args.port, args.workers, tuple(args.allowed_host),
          on_ready=lambda url: print(f"Open {url}", flush=True))
    return 0
