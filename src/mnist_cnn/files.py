"""Reading and writing the product's files safely.

Writes go to a temporary name beside the target (`.<name>.XXXXXXXX.tmp`), are fsynced and
moved into place with `os.replace`, so a crash leaves either the old file or the new one,
never half of one; a write that fails (read-only folder, full disk, a file in the way) is
an `OutputError` naming the file. Reads of files a user hands us go through `read_bounded`:
the file is opened without blocking and checked with `fstat` on the open descriptor, so a
FIFO, a device or a folder is refused by name (never waited on), and a byte cap is checked
while reading, not taken from `st_size` (which is 0 for /dev/zero and many pseudo-files).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from mnist_cnn.errors import MnistCnnError, OutputError

CHUNK = 1 << 20
TEMP_SUFFIX = ".tmp"
# What atomic_write's temporary files look like: `.<name>.<8 random characters>.tmp`.
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def reason(exc: OSError) -> str:
    """The short human reason of an OSError ('No space left on device')."""
    return exc.strerror or str(exc)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then move it into place.

    An OSError on the way (read-only folder, full disk, name too long) becomes an
    OutputError naming `path`; the temporary file is removed either way.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=TEMP_SUFFIX,
                                    dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {reason(exc)}") from None
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
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {reason(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`data` into `path`, atomically (see atomic_write)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files a killed atomic_write left in `folder`; return them.

    Only for folders no other process is writing (a locked run folder)."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if _TEMP_NAME.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _kind(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def problem(path: Path) -> str | None:
    """Why `path` cannot be read as a regular file ('is a FIFO', 'is a broken symbolic
    link', ...), or None when it can; 'missing' when nothing at all is there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a broken symbolic link" if os.path.islink(path) else "missing"
    except NotADirectoryError:
        return "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a loop of symbolic links"
        return f"cannot be read ({reason(exc)})"
    return None if stat.S_ISREG(mode) else f"is {_kind(mode)}"


def regular_file(path: Path, error: type[MnistCnnError], what: str = "file") -> None:
    """Raise `error` unless `path` is an existing regular file (symlinks are followed)."""
    found = problem(Path(path))
    if found == "missing":
        raise error(f"{path}: cannot read: no such {what}")
    if found is not None:
        raise error(f"{path}: {found}" + (f", not a {what}" if found.startswith("is ") else ""))


def open_regular(path: Path, error: type[MnistCnnError], what: str = "file") -> BinaryIO:
    """Open `path` for reading if it is a regular file: opened without blocking (a FIFO
    would otherwise wait forever for a writer) and checked on the open descriptor, so a
    file swapped for a FIFO between a check and the open is refused too."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        regular_file(path, error, what)  # names the problem (missing, a loop, ...)
        raise error(f"{path}: cannot be read ({reason(exc)})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{path}: is {_kind(mode)}, not a {what}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bounded(path: Path, limit: int, error: type[MnistCnnError], what: str = "file",
                 too_large: type[MnistCnnError] | None = None) -> bytes:
    """The bytes of the regular file `path`, refusing (with `error`, or `too_large` when
    given) anything over `limit` bytes."""
    with open_regular(path, error, what) as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read ({reason(exc)})") from None
    if len(data) > limit:
        article = "an" if what[:1] in "aeiou" else "a"
        raise (too_large or error)(f"{path}: too large: {article} {what} is never over "
                                   f"{limit:,} bytes")
    return data


def read_json(path: Path, limit: int, error: type[MnistCnnError], what: str = "file") -> Any:
    """The JSON in the regular file `path` (read_bounded), or one `error` naming it."""
    import json

    raw = read_bounded(path, limit, error, what)
    try:
        return json.loads(raw)
    # ValueError covers bad JSON, bad UTF-8 and over-long integers; RecursionError, nesting.
    except (ValueError, RecursionError) as exc:
        raise error(f"{path}: not valid JSON ({str(exc)[:200]})") from None
