"""A run directory written as one unit, by one writer at a time.

A run is built in a staging folder beside its target, `<parent>/.<name>.partial/`, and
moved into place only when it is complete (an existing target is first renamed to
`.<name>.old`, then removed), so the target always holds one whole run, the old one or the
new one, never a mix. While a run is written, `<parent>/.<name>.lock` is held with flock:
a second writer is refused at once, and the kernel releases the lock of a killed process.
Under the lock, what a killed writer left is cleaned up: the temporary files of atomic
writes, and a target set aside by an interrupted swap (restored, or removed if the swap
had completed). A staging folder that holds a checkpoint is an interrupted run: it is kept
until it is resumed or replaced with --overwrite.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from mnist_cnn.errors import OutputError
from mnist_cnn.files import reason, remove_stale_temps

PARTIAL, OLD, LOCK = ".partial", ".old", ".lock"
STATE = Path("checkpoint") / "state.pt"
COMPLETE = "model.json"  # written last: a staging folder holding it is a finished run
WEIGHTS = "model.safetensors"


def _aux(target: Path, suffix: str) -> Path:
    """`<parent>/.<name><suffix>`, shortened (with a hash) where the name is near the limit."""
    name = target.name
    if len(name.encode()) + len(suffix) + 1 > 255:
        name = name[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return target.parent / f".{name}{suffix}"


def describe(folder: Path) -> str:
    """What `folder` holds: 'missing', 'empty', 'run' (model.json and weights, or an
    ensemble's model.json and members), 'partial' (only an interrupted run's checkpoint) or
    'files' (anything else)."""
    try:
        names = {p.name for p in folder.iterdir()}
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise OutputError(f"{folder}: cannot read the folder ({reason(exc)})") from None
    if not names:
        return "empty"
    if {COMPLETE, WEIGHTS} <= names or {COMPLETE, "members"} <= names:  # a network, an ensemble
        return "run"
    if names <= {"checkpoint", "history.csv"} and (folder / STATE).is_file():
        return "partial"
    return "files"


def check_target(target: Path) -> Path:
    """`target` as a usable run folder path (a link to a folder is followed), or an
    OutputError saying why not: a file in the way, a name too long, an unreadable path."""
    try:
        if target.is_symlink() and target.resolve().is_dir():
            target = target.resolve()
        if target.exists() and not target.is_dir():
            raise OutputError(f"{target}: exists and is not a folder; choose another --out")
    except OSError as exc:
        what = "name too long" if exc.errno == errno.ENAMETOOLONG else reason(exc)
        raise OutputError(f"{target}: cannot be used as a run folder ({what})") from None
    return target


class RunFolder:
    """The lock, the staging folder and the swap for one target run folder. Use as a
    context manager: the lock is taken on entry and released on exit."""

    def __init__(self, target: Path):
        target = Path(target)
        if target.name in ("", ".", ".."):  # the current folder or a parent: by its name
            target = target.resolve()
        self.target = check_target(target)
        self.staging = _aux(self.target, PARTIAL)
        self._old = _aux(self.target, OLD)
        self._lock_path = _aux(self.target, LOCK)
        self._fd: int | None = None
        self._made: list[Path] = []  # parent folders this writer created

    # ------------------------------------------------------------ the lock
    def __enter__(self) -> RunFolder:
        parent = self.target.parent
        self._made = [d for d in (parent, *parent.parents) if not d.exists()]
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {parent}: {reason(exc)}") from None
        self._fd = self._acquire()
        self._recover()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is None:
            return
        self._lock_path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        for folder in self._made:  # folders made for a run that was never written
            try:
                folder.rmdir()
            except OSError:
                break

    def _acquire(self) -> int:
        while True:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot write in {self.target.parent}: {reason(exc)}")\
                    from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise OutputError(f"{self.target} is being written by another mnist-cnn "
                                  f"(pid {holder}); wait for it to finish or choose another "
                                  "--out") from None
            try:  # the file may have been unlinked by the holder we waited for: retry
                same = os.fstat(fd).st_ino == os.stat(self._lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
            os.close(fd)

    def _recover(self) -> None:
        """Finish or undo a swap a killed writer left half done; drop stale temp files."""
        if self._old.exists():
            if self.target.exists():
                shutil.rmtree(self._old, ignore_errors=True)
            elif (self.staging / COMPLETE).is_file():
                self._rename(self.staging, self.target)
                shutil.rmtree(self._old, ignore_errors=True)
            else:
                self._rename(self._old, self.target)
        for folder in (self.target, self.staging):
            remove_stale_temps(folder)
            remove_stale_temps(folder / "checkpoint")

    # ------------------------------------------------------------ staging and the swap
    def interrupted(self) -> Path | None:
        """The folder holding this target's interrupted run (its staging folder first)."""
        for folder in (self.staging, self.target):
            if (folder / STATE).is_file() and not (folder / COMPLETE).exists():
                return folder
        return None

    def start(self, keep: bool = False) -> Path:
        """A staging folder to build the run in: fresh, or (keep) the one already there."""
        if self.staging.exists() and not keep:
            self.discard()
        try:
            self.staging.mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write in {self.target.parent}: {reason(exc)}") from None
        return self.staging

    def discard(self) -> None:
        """Remove the staging folder and everything in it."""
        try:
            shutil.rmtree(self.staging)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot remove {self.staging}: {reason(exc)}") from None

    def commit(self) -> Path:
        """Move the staging folder into place, replacing the target as a whole."""
        if self.target.exists():
            self._rename(self.target, self._old)
        self._rename(self.staging, self.target)
        _fsync_dir(self.target.parent)
        shutil.rmtree(self._old, ignore_errors=True)
        return self.target

    def keep_interrupted(self) -> Path | None:
        """After a failure: where this run's last checkpoint is now, or None if it has none.

        The staging folder replaces the target if the target holds no finished run (it is
        missing, empty, or an interrupted run's checkpoint); otherwise it stays beside it,
        and `train --resume <target>` finds it there."""
        if not (self.staging / STATE).is_file():
            self.discard()
            return None
        if describe(self.target) in ("missing", "empty", "partial"):
            return self.commit()
        return self.staging

    @staticmethod
    def _rename(src: Path, dst: Path) -> None:
        try:
            os.rename(src, dst)
        except OSError as exc:
            raise OutputError(f"cannot move {src} to {dst}: {reason(exc)}") from None


def _fsync_dir(folder: Path) -> None:
    """Make the renames in `folder` durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
