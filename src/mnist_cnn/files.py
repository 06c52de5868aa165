"""Reading and writing the product's files safely.

Writes go to a temporary name beside the target, are fsynced and moved into place with
`os.replace`, so a crash leaves either the old file or the new one, never half of one.
Reads of files a user hands us go through `read_bounded`: regular files only (a FIFO, a
device or a folder is refused by name), and a byte cap checked while reading, not taken
from `st_size` (which is 0 for /dev/zero and for many pseudo-files).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from mnist_cnn.errors import MnistCnnError

CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file owner-only; a model or report is meant to be shared, so it
        # gets the permissions an ordinary new file would have (after `write`, which may
        # have replaced the file).
        tmp.chmod(0o666 & ~_umask())
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def regular_file(path: Path, error: type[MnistCnnError], what: str = "file") -> None:
    """Raise `error` unless `path` is an existing regular file (symlinks are followed)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a special file")
        raise error(f"{path}: is {kind}, not a {what}")


def read_bounded(path: Path, limit: int, error: type[MnistCnnError],
                 what: str = "file") -> bytes:
    """The bytes of the regular file `path`, refusing (with `error`) anything over `limit`."""
    regular_file(path, error, what)
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise error(f"{path}: more than {limit:,} bytes; a {what} is never over {limit:,}")
    return data
