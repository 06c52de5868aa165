"""Run `mnist-cnn` (or any command) in a subprocess and measure what a user would see:
exit code, stdout, stderr, wall time, CPU time and the process's own peak memory.

Peak memory is the command's own ru_maxrss from `os.wait4`, taken by a small Python
launcher (WRAP): a process forked straight from the test process would count the test
process's memory too (Linux records the pre-exec memory's high-water mark at exec), and
RUSAGE_CHILDREN would count every earlier subprocess of the session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float  # wall time
    cpu_seconds: float  # user + system time of the child
    peak_rss_mb: float  # the child's peak resident memory

    def one_error_line(self) -> str:
        """The single stderr line of a clean failure (asserts there is exactly one)."""
        lines = self.stderr.strip().splitlines()
        assert "Traceback" not in self.stderr, self.stderr
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("mnist-cnn: error: "), self.stderr
        return lines[0]


def cli(*argv: str) -> list[str]:
    """`python -m mnist_cnn ARGV...` with this interpreter."""
    return [sys.executable, "-m", "mnist_cnn", *map(str, argv)]


WRAP = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | str | None = None,
        timeout: float = 300) -> Result:
    """Run `cmd` to the end (killed after `timeout` s, then the test fails)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as usage:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", WRAP, usage.name, *map(str, cmd)],
                                env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{cmd} did not finish in {timeout} s (a hang)") from None
        seconds = time.monotonic() - start
        maxrss_kb, cpu = usage.read().split()
        out.seek(0)
        err.seek(0)
        return Result(proc.returncode, out.read().decode(errors="replace"),
                      err.read().decode(errors="replace"), seconds, float(cpu),
                      int(maxrss_kb) / 1024)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with an empty home and cache, no data folder set, and
    mirrors at a closed local port (so no real network is ever tried)."""
    env = {k: v for k, v in os.environ.items() if k != "MNIST_CNN_DATA"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               MNIST_CNN_MIRRORS="https://127.0.0.1:9/")
    env.update(extra)
    return env


# `python -m mnist_cnn`, unchanged, except that training sees a slice of real MNIST (so an
# epoch takes about a second: the only way to get short epochs of real data) and, when
# asked, checkpoints inside an epoch more often than the product's CHECKPOINT_SECONDS.
SHIM = """
import runpy, sys
from mnist_cnn import data, run
_load = data.load_data
def _slice(*args, **kwargs):
    (x, y), (xt, yt) = _load(*args, **kwargs)
    return (x[:{n}], y[:{n}]), (xt[:500], yt[:500])
data.load_data = _slice
if {seconds!r} is not None:
    run.CHECKPOINT_SECONDS = {seconds!r}
sys.argv[0] = "mnist-cnn"
runpy.run_module("mnist_cnn", run_name="__main__")
"""


def sliced_train(*argv: str, n: int = 1024, checkpoint_seconds: float | None = None
                 ) -> list[str]:
    """`mnist-cnn train ARGV...` on the first `n` training images (see SHIM)."""
    return [sys.executable, "-c", SHIM.format(n=n, seconds=checkpoint_seconds), "train",
            *map(str, argv)]
