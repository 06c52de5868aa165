"""The server's limits at the connection: how long, how large, how many, and for whom.

uvicorn with httptools closes a keep-alive connection that idles after a response, but holds
a connection that never sends a request, sends its headers a byte at a time, or never
finishes its body, and it buffers headers of any size. `GuardedProtocol` adds a deadline to
each phase of a request, a cap on the header bytes and one on open connections. `Guard`
(ASGI) answers only for allowed Host names (a web page on another site cannot reach a server
on 127.0.0.1 through DNS rebinding), bounds the body bytes, and keeps client disconnects out
of the log. Every refusal is a small JSON body {"error": "..."}.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # always allowed as Host
WILDCARD_BINDS = ("0.0.0.0", "::", "")  # listening on every interface
SECURITY_HEADERS = [  # the page loads nothing from elsewhere, and says so to the browser
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]]+)(?::\d{1,5})?")  # name or [v6], then a port


@dataclass(frozen=True)
class Limits:
    """Every limit of the server, in one place (tests shorten the timeouts)."""

    header_seconds: float = 10.0  # a new connection or request -> its last header line
    body_seconds: float = 30.0  # headers -> the body's last byte: 2 MiB at 70 kB/s
    keep_alive_seconds: float = 5.0  # idle between requests on one connection (uvicorn's)
    max_header_bytes: int = 32 * 1024  # request line and headers; a browser sends ~1 kB
    max_body_bytes: int = 2 * 1024 * 1024  # a phone photo re-encoded by the page fits
    max_body_bytes_in_flight: int = 64 * 1024 * 1024  # all bodies being read at once
    max_connections: int = 256  # open at once; more are answered 503 and closed
    threads: int = 2  # threads for requests (JSON, small images, inference)
    queue: int = 32  # requests waiting for one of them; more are answered 503
    large_image_queue: int = 2  # large images decode one at a time; this many may wait


class Refused(Exception):
    """A request refused for a reason we can name; carries its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def json_error(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, for the protocol level."""
    body = json.dumps({"error": message}).encode()
    reason = HTTPStatus(status).phrase
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def limits_of(app: Any) -> Limits:
    """The Limits an app carries in app.state.limits (through uvicorn's wrappers)."""
    while app is not None:
        limits = getattr(getattr(app, "state", None), "limits", None)
        if isinstance(limits, Limits):
            return limits
        app = getattr(app, "app", None)
    return Limits()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, a header-size cap and a connection cap.

    Phases: from the connection (or a request's first byte) to the end of the headers,
    `header_seconds`; from there to the end of the body, `body_seconds`; between requests,
    uvicorn's keep-alive timeout. A deadline that passes closes the connection, with a 408
    when a request was under way and no answer has started.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits_of(self.app)
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = True  # reading a request line and headers (or waiting for one)
        self._started = False  # a byte of the current request has arrived
        self._head_room = self.limits.max_header_bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too many connections: try again in a moment")
            return
        self._arm(self.limits.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Headers are fed at most `_head_room` bytes at a time, so a header that never ends
        # is refused at the limit instead of growing inside the parser.
        while data and not self.transport.is_closing():
            if self._in_head:
                if self._head_room <= 0:
                    limit = self.limits.max_header_bytes
                    self._refuse(431, f"request headers too large: the limit is {limit:,} bytes")
                    return
                chunk, data = data[: self._head_room], data[self._head_room :]
                self._head_room -= len(chunk)
            else:
                chunk, data = data, b""
            super().data_received(chunk)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._started = True
        self._arm(self.limits.header_seconds)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self.limits.body_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._started = True, False
        self._head_room = self.limits.max_header_bytes
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._in_head and self._started:
            self._refuse(408, "timed out waiting for the request headers")
        elif not self._in_head:
            self._refuse(408, "timed out waiting for the request body")
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    def send_400_response(self, msg: str) -> None:
        """A request the parser rejects: JSON like every other refusal (uvicorn's is text)."""
        self._refuse(400, f"malformed HTTP request: {msg}")

    def _refuse(self, status: int, message: str) -> None:
        """Answer with a JSON error when no answer to this request has begun, and close."""
        cycle = self.cycle  # while reading headers: the previous request's, if any
        if self._in_head:
            quiet = cycle is not None and not cycle.response_complete  # pipelined, busy
        else:
            quiet = cycle is None or cycle.response_started
        if not quiet:
            self.transport.write(json_error(status, message))
        self.transport.close()


class AllowedHosts:
    """Host header names the server answers for: the loopback names, the address it listens
    on, and any added with --allowed-host ("*": any). When listening on every interface,
    IP addresses are allowed too (DNS rebinding needs a name)."""

    def __init__(self, bind_host: str = "127.0.0.1", extra: tuple[str, ...] = ()):
        names = {*LOOPBACK_NAMES, *(normal_host(h) for h in (bind_host, *extra) if h)}
        self.any = "*" in extra
        self.any_ip = bind_host in WILDCARD_BINDS
        self.names = frozenset(names)

    def allows(self, header: bytes) -> bool:
        """Whether a Host header value (with or without a port) names this server."""
        match = _HOST.fullmatch(header.decode("latin-1").strip().lower())
        if match is None:
            return self.any
        name = match.group(1)
        return self.any or name in self.names or (self.any_ip and _is_ip(name))


def normal_host(name: str) -> str:
    """A host as it appears in a Host header: lower case, IPv6 in brackets."""
    name = name.strip().lower()
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware in front of the app: the Host check, the body limits (one body by
    Content-Length before reading and by counting as it arrives; all bodies being read at
    once), security headers on every answer, and quiet client disconnects."""

    def __init__(self, app: Any, limits: Limits, hosts: AllowedHosts):
        self.app, self.limits, self.hosts = app, limits, hosts
        self.in_flight = 0  # body bytes of requests being read (one event loop: no lock)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self._refusal(scope["headers"])
        if refusal:
            return await _send_error(send, *refusal)
        reserved = 0  # this request's share of in_flight

        async def counted() -> dict:
            nonlocal reserved
            message = await receive()
            reserved = self._reserve(reserved, len(message.get("body", b"")))
            return message

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":  # the app's own CSP, if any, wins
                own = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in SECURITY_HEADERS if h[0] not in own)]
            await send(message)

        try:
            await self.app(scope, counted, with_headers)
        except ClientDisconnect:
            pass  # the client went away: nobody to answer, nothing to log
        finally:
            self.in_flight -= reserved

    def _refusal(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, str] | None:
        hosts = [value for name, value in headers if name == b"host"]
        if len(hosts) > 1:
            return 400, "more than one Host header"
        if hosts and not self.hosts.allows(hosts[0]):
            shown = hosts[0].decode("latin-1")[:100]
            return 400, (f"this server does not answer for Host {shown!r}; start it with "
                         f"--allowed-host NAME to add a name")
        lengths = [value for name, value in headers if name == b"content-length"]
        if lengths and (not lengths[0].isdigit() or int(lengths[0]) > self.limits.max_body_bytes):
            return 413, self._too_large()
        return None

    def _reserve(self, reserved: int, more: int) -> int:
        """Count `more` body bytes against this request's limit and everyone's."""
        if reserved + more > self.limits.max_body_bytes:
            raise Refused(413, self._too_large())
        if self.in_flight + more > self.limits.max_body_bytes_in_flight:
            raise Refused(503, "server busy: too many uploads at once; try again in a moment")
        self.in_flight += more
        return reserved + more

    def _too_large(self) -> str:
        return f"request body too large: the limit is {self.limits.max_body_bytes:,} bytes"


async def _send_error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
