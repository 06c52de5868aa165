"""A local HTTPS mirror on 127.0.0.1 that serves each download fault on its own path prefix.

`https://127.0.0.1:PORT/<fault>/<dataset>/<file>.gz`. The certificate is a self-signed
test certificate (tests/corpus/tls/, for 127.0.0.1 only); clients trust it through
SSL_CERT_FILE, so the product's code runs its real HTTPS path, unchanged.
"""

from __future__ import annotations

import gzip
import http.server
import ssl
import threading
import time
from pathlib import Path

TLS = Path(__file__).parent / "corpus" / "tls"
TRUSTED_CERT = TLS / "loopback.crt"  # what clients are told to trust
SERVER_PEM = TLS / "loopback.pem"  # cert + key of the trusted server
UNTRUSTED_PEM = TLS / "untrusted.pem"  # a different self-signed cert nobody trusts


class Mirror:
    """Serves `files` ({"mnist/t10k-labels-idx1-ubyte.gz": gz bytes}) under each fault."""

    def __init__(self, files: dict[str, bytes], pem: Path | None = SERVER_PEM,
                 slow_s: float = 2.0):
        self.files, self.slow_s, self.requests = files, slow_s, []
        handler = type("Handler", (_Handler,), {"mirror": self})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if pem is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pem)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def base(self, fault: str, scheme: str | None = None) -> str:
        """The base URL of one fault; the dataset folder is appended by the caller."""
        return f"{scheme or self.scheme}://127.0.0.1:{self.port}/{fault}/"

    def __enter__(self) -> Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    mirror: Mirror

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, ssl.SSLError):
            pass  # clients that give up (timeouts, refused certificates) are expected

    def do_GET(self) -> None:  # noqa: N802
        self.mirror.requests.append(self.path)
        fault, _, rest = self.path.lstrip("/").partition("/")
        body = self.mirror.files.get(rest)
        if body is None or fault == "404":
            return self._send(404, b"not found", "text/plain")
        getattr(self, "_" + fault.replace("-", "_"))(body, rest)

    def _send(self, code: int, body: bytes, ctype: str = "application/gzip",
              length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _good(self, body, rest):
        self._send(200, body)

    def _html(self, body, rest):  # a captive portal / error page with status 200
        self._send(200, b"<!DOCTYPE html><html><body>Sorry</body></html>", "text/html")

    def _html_as_binary(self, body, rest):  # the same page, mislabelled as binary
        self._send(200, b"<!DOCTYPE html><html><body>Sorry</body></html>")

    def _truncated(self, body, rest):  # announces the full length, sends half, hangs up
        self._send(200, body[: len(body) // 2], length=len(body))
        self.close_connection = True

    def _truncated_no_length(self, body, rest):  # no length header: only gzip can tell
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True

    def _corrupt(self, body, rest):  # valid gzip of the right size, one byte changed
        raw = bytearray(gzip.decompress(body))
        raw[len(raw) // 2] ^= 0xFF
        self._send(200, gzip.compress(bytes(raw)))

    def _short(self, body, rest):  # valid gzip of too few bytes
        self._send(200, gzip.compress(gzip.decompress(body)[:-10]))

    def _bad_gzip(self, body, rest):  # gzip magic, then garbage
        self._send(200, b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8)

    def _bomb(self, body, rest):  # 64 MiB of zeros in about 64 KiB
        self._send(200, gzip.compress(bytes(64 << 20), compresslevel=9))

    def _endless(self, body, rest):  # streams without end and without a length
        self.send_response(200)
        self.end_headers()
        chunk = b"\x1f\x8b" + bytes(1 << 16)
        while True:
            self.wfile.write(chunk)

    def _slow(self, body, rest):  # says nothing for longer than the client waits
        time.sleep(self.mirror.slow_s)
        self._send(200, body)

    def _redirect(self, body, rest, scheme="https"):
        self.send_response(302)
        self.send_header("Location", f"{scheme}://127.0.0.1:{self.mirror.port}/good/{rest}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _redirect_to_http(self, body, rest):
        self._redirect(body, rest, scheme="http")
