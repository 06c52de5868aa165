"""The web server while clients upload the largest images it accepts: is it still answering,
and how much memory does it take?

    python benchmarks/large_images.py RUN_DIR [--clients 4] [--seconds 20] [--workers 1]

Starts `mnist_cnn.serve.serve()` (what `mnist-cnn serve` runs) on 127.0.0.1 in its own
process. `--clients` threads each upload, one after another, a 24-megapixel all-transparent
RGBA PNG (6000x4000, 93 kB: just under the pixel cap, and the costliest image to prepare),
while one more thread asks GET /healthz every 20 ms. Prints the /healthz latency (p50, p99,
max), the uploads' answers by status, and the server's peak memory (VmHWM from
/proc/PID/status, per server process). Results are in docs/BENCHMARKS.md ("Large images").
"""

from __future__ import annotations

import argparse
import collections
import http.client
import io
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from load import HOST, SERVER, free_port, wait_ready  # noqa: E402  (the same server start)


def transparent_png(width: int = 6000, height: int = 4000) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 0, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def uploader(port: int, body: bytes, stop: threading.Event, answers: collections.Counter) -> None:
    while not stop.is_set():
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=120)
            conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "image/png"})
            response = conn.getresponse()
            response.read()
            answers[response.status] += 1
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            answers[type(exc).__name__] += 1


def health(port: int, stop: threading.Event, latencies: list, failures: list) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    while not stop.is_set():
        start = time.perf_counter()
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                failures.append(response.status)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=120)
        latencies.append(time.perf_counter() - start)
        time.sleep(0.02)
    conn.close()


def peak_memory_mb(pid: int) -> list[float]:
    """VmHWM of the server process and of each of its children (uvicorn workers), in MB."""
    pids = [pid, *(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    found = []
    for p in pids:
        status = Path(f"/proc/{p}/status").read_text()
        found.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
    return found


def run(run_dir: str, clients: int, seconds: float, workers: int) -> int:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, run_dir, HOST, str(port),
                             str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        body = transparent_png()
        stop = threading.Event()
        answers: collections.Counter = collections.Counter()
        latencies: list[float] = []
        failures: list = []
        threads = [threading.Thread(target=uploader, args=(port, body, stop, answers))
                   for _ in range(clients)]
        threads.append(threading.Thread(target=health, args=(port, stop, latencies, failures)))
        for t in threads:
            t.start()
        time.sleep(seconds)
        memory = peak_memory_mb(proc.pid)
        stop.set()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ms = np.array(latencies) * 1000
    p50, p99 = np.percentile(ms, [50, 99])
    print(f"{clients} clients uploading a {len(body):,}-byte 6000x4000 RGBA PNG for {seconds:g} s; "
          f"{workers} server worker(s)")
    print(f"/healthz: {len(ms)} answers, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {ms.max():.1f} ms; failures: {len(failures)}")
    print(f"uploads answered: {dict(sorted(answers.items(), key=str))}")
    print("server peak memory (VmHWM): " + ", ".join(f"{m:.0f} MB" for m in memory))
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    args = parser.parse_args()
    sys.exit(run(args.run_dir, args.clients, args.seconds, args.workers))


if __name__ == "__main__":
    main()
