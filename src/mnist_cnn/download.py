"""Verified downloads: try each HTTPS mirror in turn, keep only bytes that verify.

A file is streamed to a temporary name in the cache directory (bounded: a mirror that sends
more than the file can compress to is cut off), gunzipped with a bound (the expected size),
checked against its pinned sha256, and only then moved into place with `os.replace`, so the
cache never holds a half-written or unverified file. Any failure on a mirror (DNS, TLS,
timeout, HTTP error, an HTML page served with status 200, truncation, bad gzip, wrong size or
digest) moves on to the next; when all fail, one DownloadError names each mirror and why.
Plain HTTP is never used, not even through a redirect.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from mnist_cnn.datasets import Dataset, read_verified
from mnist_cnn.errors import DataError, DownloadError

TIMEOUT_S = 30.0  # per connection attempt and per read: a stalled mirror is left after this
CHUNK = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
# gzip never grows incompressible data by more than ~0.1% plus a header: anything larger
# than the raw size plus this slack is not our file, and the download is cut off.
SLACK_BYTES = 1 << 20
# Replaces the registry's mirrors: whitespace-separated HTTPS base URLs, each serving
# <base>/<dataset>/<file>.gz. Meant for tests and for organisations with their own mirror.
MIRRORS_ENV = "MNIST_CNN_MIRRORS"

# progress(url, bytes received so far, total bytes or None when the server does not say)
Progress = Callable[[str, int, int | None], None]


class _MirrorFailed(Exception):
    """One mirror did not give us the file; the message says why (it goes into the list)."""


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to HTTPS URLs: a mirror can never downgrade us to plain HTTP."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise _MirrorFailed(f"redirected to a non-HTTPS URL ({newurl}); refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def mirrors_for(ds: Dataset) -> tuple[str, ...]:
    """The base URLs to try for `ds`: $MNIST_CNN_MIRRORS if set, else the registry's."""
    bases = os.environ.get(MIRRORS_ENV, "").split()
    if bases:
        return tuple(base.rstrip("/") + f"/{ds.name}/" for base in bases)
    return ds.mirrors


def fetch_file(ds: Dataset, split: str, cache: Path, *, mirrors: tuple[str, ...] | None = None,
               context: ssl.SSLContext | None = None, timeout: float = TIMEOUT_S,
               progress: Progress | None = None) -> Path:
    """Download one file into `cache/<dataset>/`, verified, and return its path.

    `mirrors` defaults to `mirrors_for(ds)`; `context` to the system's trusted CAs.
    Raises DownloadError listing each mirror and why it failed.
    """
    spec = ds.files[split]
    target_dir = cache / ds.name
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {target_dir}: {exc}") from None
    failures: list[str] = []
    for base in mirrors if mirrors is not None else mirrors_for(ds):
        url = base + spec.name + ".gz"
        try:
            return _fetch_one(url, ds, split, target_dir, context, timeout, progress)
        except (_MirrorFailed, DataError, OSError, http.client.HTTPException,
                ssl.SSLError) as exc:
            failures.append(f"{url}: {_reason(exc)}")
    tried = "; ".join(failures) or "no mirrors are listed"
    error = DownloadError(f"{ds.name}: could not download {spec.name} from any mirror: {tried}")
    error.tried = tried
    raise error


def _fetch_one(url: str, ds: Dataset, split: str, target_dir: Path,
               context: ssl.SSLContext | None, timeout: float,
               progress: Progress | None) -> Path:
    spec = ds.files[split]
    fd, name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".gz", dir=target_dir)
    os.close(fd)
    tmp = Path(name)
    try:
        _download(url, tmp, spec.size + SLACK_BYTES, context, timeout, progress)
        with tmp.open("rb") as fh:
            head = fh.read(16)
        if not head.startswith(GZIP_MAGIC):
            raise _MirrorFailed(f"not gzip data (starts with {head!r})")
        try:
            raw = read_verified(tmp, spec)  # bounded gunzip + size + sha256
        except DataError as exc:
            raise _MirrorFailed(str(exc).removeprefix(f"{tmp}: ")) from None
        with tmp.open("wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        target = target_dir / spec.name
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def _download(url: str, dest: Path, limit: int, context: ssl.SSLContext | None,
              timeout: float, progress: Progress | None) -> None:
    """Stream `url` into `dest`, refusing non-HTTPS, HTML pages, oversize and short bodies."""
    if urllib.parse.urlsplit(url).scheme != "https":
        raise _MirrorFailed("not an HTTPS URL; plain HTTP is never used")
    opener = urllib.request.build_opener(
        _HttpsOnlyRedirects(), urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, headers={"User-Agent": "mnist-cnn",
                                                   "Accept-Encoding": "identity"})
    with opener.open(request, timeout=timeout) as response, dest.open("wb") as out:
        if "html" in response.headers.get("Content-Type", "").lower():
            raise _MirrorFailed("answered with an HTML page, not the file")
        total = _content_length(response)
        if total is not None and total > limit:
            raise _MirrorFailed(f"announces {total} bytes; the file cannot be over {limit}")
        done = 0
        if progress:
            progress(url, 0, total)
        while chunk := response.read(CHUNK):
            done += len(chunk)
            if done > limit:
                raise _MirrorFailed(f"sent over {limit} bytes; the file cannot be that large")
            out.write(chunk)
            if progress:
                progress(url, done, total)
    if total is not None and done != total:
        raise _MirrorFailed(f"truncated: received {done} of {total} bytes")


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    """A short, human reason for one mirror's failure."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    elif isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "truncated: the connection closed before the file was complete"
    if isinstance(exc, http.client.HTTPException | ConnectionError):
        return f"connection failed ({type(exc).__name__}: {exc})"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
