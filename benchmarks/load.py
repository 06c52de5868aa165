"""Load check of the web server: uvicorn on 127.0.0.1, many requests from concurrent clients.

    python benchmarks/load.py RUN_DIR [--requests 2000] [--clients 8] [--activations]

Starts the server with `serve()` (what `mnist-cnn serve` runs) in a separate process, so the
client threads do not share its interpreter,
waits for /readyz, then sends POST /api/predict with a 28x28 JSON digit from each client
over a keep-alive connection. Prints p50/p90/p99/max latency, throughput and the error count;
exits non-zero on any error. Results are recorded in docs/BENCHMARKS.md ("Web server load").
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time

import numpy as np
from PIL import Image, ImageDraw

from mnist_cnn.preprocess import to_mnist

HOST = "127.0.0.1"  # loopback only
SERVER = ("import sys; from mnist_cnn.serve import serve; "
          "serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def digit_body(activations: bool) -> bytes:
    """A drawn 7 made MNIST-style: the request a client that prepares its input sends."""
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    return json.dumps({"pixels": to_mnist(img).tolist(), "activations": activations}).encode()


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server not ready in time")


def client(port: int, body: bytes, count: int, latencies: list, errors: list) -> None:
    """Send `count` requests over one keep-alive connection, recording each latency."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Content-Type": "application/json"}
    for _ in range(count):
        start = time.perf_counter()
        try:
            conn.request("POST", "/api/predict", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200 or "label" not in json.loads(payload):
                errors.append(response.status)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
        latencies.append(time.perf_counter() - start)
    conn.close()


def run(run_dir: str, requests: int, clients: int, activations: bool, workers: int) -> int:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, run_dir, HOST, str(port),
                             str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # access log
    try:
        wait_ready(port, proc)
        body = digit_body(activations)
        latencies: list[float] = []
        errors: list = []
        per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
        threads = [threading.Thread(target=client, args=(port, body, n, latencies, errors))
                   for n in per_client]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ms = np.array(latencies) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    print(f"{len(ms)} requests, {clients} clients, {workers} server worker(s), "
          f"{len(body)} byte JSON body, "
          f"activations={'yes' if activations else 'no'}")
    print(f"latency ms: p50 {p50:.2f}  p90 {p90:.2f}  p99 {p99:.2f}  max {ms.max():.2f}")
    print(f"throughput: {len(ms) / wall:.0f} requests/s over {wall:.1f} s; errors: {len(errors)}")
    if errors:
        print(f"first errors: {errors[:5]}")
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--activations", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    args = parser.parse_args()
    sys.exit(run(args.run_dir, args.requests, args.clients, args.activations, args.workers))


if __name__ == "__main__":
    main()
