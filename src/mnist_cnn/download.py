"""Verified downloads: try each HTTPS mirror in turn, keep only bytes that verify.

A file is streamed to a temporary name in the cache directory, decompressed with a bound
(the expected size), checked against its pinned sha256, and only then moved into place
with `os.replace`, so the cache never holds a half-written or unverified file.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from mnist_cnn.data import Dataset, read_verified
from mnist_cnn.errors import DataError, DownloadError

TIMEOUT_S = 30  # per connection attempt and per read
CHUNK = 1 << 16


def _get(url: str, dest: Path) -> None:
    if not url.startswith("https://"):
        raise DataError("refusing a non-HTTPS URL")  # never downgrade to plain HTTP
    request = urllib.request.Request(url, headers={"User-Agent": "mnist-cnn"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, dest.open("wb") as out:
        if "text/html" in response.headers.get("Content-Type", ""):
            raise DataError("the mirror answered with an HTML page, not the file")
        while chunk := response.read(CHUNK):
            out.write(chunk)


def fetch_file(ds: Dataset, split: str, cache: Path) -> Path:
    """Download one file into `cache/<dataset>/`, verified; raise DownloadError listing why
    each mirror failed."""
    spec = ds.files[split]
    target_dir = cache / ds.name
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / spec.name
    failures: list[str] = []
    for mirror in ds.mirrors:
        url = mirror + spec.name + ".gz"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".gz", dir=target_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _get(url, tmp)
            raw = read_verified(tmp, spec)  # bounded gunzip + size + sha256
            tmp.write_bytes(raw)
            os.replace(tmp, target)
            return target
        except (OSError, urllib.error.URLError, gzip.BadGzipFile, DataError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(f"{ds.name}: could not download {spec.name}: " + "; ".join(failures))
