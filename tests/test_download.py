"""Verified downloads against a local HTTPS mirror on 127.0.0.1 that serves every fault."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from mirror_server import TRUSTED_CERT, UNTRUSTED_PEM, Mirror
from mnist_cnn import data, download
from mnist_cnn.errors import DataError, DownloadError

MNIST = data.DATASETS["mnist"]
SPLIT = "t10k-labels"  # the smallest file: 10,008 bytes raw, about 5 KB gzipped
SPEC = MNIST.files[SPLIT]


@pytest.fixture(scope="module")
def gz_files(data_dir) -> dict[str, bytes]:
    return {f"{ds.name}/{spec.name}.gz": (data_dir / ds.name / f"{spec.name}.gz").read_bytes()
            for ds in data.DATASETS.values() for spec in ds.files.values()}


@pytest.fixture()
def mirror(gz_files, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(TRUSTED_CERT))  # trust the test certificate
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.delenv(download.MIRRORS_ENV, raising=False)
    with Mirror(gz_files, slow_s=1.5) as m:
        yield m


def _fetch(mirror, tmp_path, *faults, **kwargs):
    bases = tuple(f if "://" in f else mirror.base(f) + "mnist/" for f in faults)
    return download.fetch_file(MNIST, SPLIT, tmp_path, mirrors=bases, **kwargs)


def _failure(mirror, tmp_path, fault, **kwargs) -> str:
    with pytest.raises(DownloadError) as info:
        _fetch(mirror, tmp_path, fault, **kwargs)
    message = str(info.value)
    assert "\n" not in message and f"{SPEC.name} from any mirror" in message
    assert list((tmp_path / "mnist").iterdir()) == []  # nothing half-written is left
    return message


def test_good_mirror_gives_a_verified_file(mirror, tmp_path):
    seen = []
    path = _fetch(mirror, tmp_path, "good", progress=lambda *a: seen.append(a))
    assert path == tmp_path / "mnist" / SPEC.name
    assert data.read_verified(path, SPEC) == path.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == [SPEC.name]  # no temporary files
    assert seen[0][1] == 0 and seen[-1][1] == seen[-1][2] > 0  # start and finish reported


@pytest.mark.parametrize("fault, reason", [
    ("404", "HTTP 404"),
    ("html", "HTML page"),
    ("html-as-binary", "not gzip data (starts with b'<!DOCTYPE"),
    ("truncated", "truncated"),
    ("truncated-no-length", "cannot read"),
    ("corrupt", "sha256"),
    ("short", f"expected {SPEC.size}"),
    ("bad-gzip", "cannot read"),
    ("bomb", f"expected {SPEC.size}"),
    ("endless", "the file cannot be that large"),
    ("redirect-to-http", "non-HTTPS"),
])
def test_each_fault_is_named(mirror, tmp_path, fault, reason):
    message = _failure(mirror, tmp_path, fault)
    assert f"{mirror.base(fault)}mnist/{SPEC.name}.gz: " in message and reason in message


def test_a_stalled_mirror_times_out(mirror, tmp_path):
    assert "timed out" in _failure(mirror, tmp_path, "slow", timeout=0.3)


def test_an_https_redirect_is_followed(mirror, tmp_path):
    assert _fetch(mirror, tmp_path, "redirect").name == SPEC.name


def test_plain_http_is_never_used(mirror, tmp_path):
    url = mirror.base("good", scheme="http") + "mnist/"
    assert "plain HTTP is never used" in _failure(mirror, tmp_path, url)
    assert mirror.requests == []  # not even a connection was attempted


def test_untrusted_certificate_dns_and_refused_connections(mirror, gz_files, tmp_path):
    with Mirror(gz_files, pem=UNTRUSTED_PEM) as other, Mirror(gz_files, pem=None) as plain:
        message = _failure(mirror, tmp_path, other.base("good") + "mnist/")
        assert "TLS certificate not trusted" in message
        message = _failure(mirror, tmp_path, f"https://127.0.0.1:{plain.port}/good/mnist/")
        assert "TLS error" in message
        assert other.requests == [] and plain.requests == []
    assert "DNS lookup failed" in _failure(mirror, tmp_path, "https://mirror.invalid/mnist/")
    assert "refused" in _failure(mirror, tmp_path, "https://127.0.0.1:1/mnist/")


def test_every_failing_mirror_is_listed_then_the_good_one_is_used(mirror, tmp_path):
    faults = ("404", "html", "corrupt", "bomb")
    with pytest.raises(DownloadError) as info:
        _fetch(mirror, tmp_path, *faults)
    message = str(info.value)
    for fault, reason in zip(faults, ("HTTP 404", "HTML", "sha256", "expected"), strict=True):
        assert f"{mirror.base(fault)}mnist/{SPEC.name}.gz: {''}" in message
        assert reason in message.split(mirror.base(fault))[1].split(";")[0]
    assert _fetch(mirror, tmp_path, *faults, "good").is_file()


def test_mirrors_come_from_the_environment(mirror, monkeypatch):
    monkeypatch.setenv(download.MIRRORS_ENV, f"{mirror.base('404')} {mirror.base('good')}")
    assert download.mirrors_for(MNIST) == (mirror.base("404") + "mnist/",
                                           mirror.base("good") + "mnist/")
    labels = data.load_split(MNIST, SPLIT)  # nothing local: downloaded into the cache
    assert labels.shape == (10000,) and (data.cache_dir() / "mnist" / SPEC.name).is_file()


def test_a_corrupt_file_in_the_cache_heals(mirror, monkeypatch):
    monkeypatch.setenv(download.MIRRORS_ENV, mirror.base("good"))
    cached = data.cache_dir() / "mnist" / SPEC.name
    cached.parent.mkdir(parents=True)
    good = gzip.decompress(mirror.files[f"mnist/{SPEC.name}.gz"])
    cached.write_bytes(good[:-100])  # a half-written file from an old, careless tool
    assert np.array_equal(data.load_split(MNIST, SPLIT), data.parse_idx(good))
    assert cached.read_bytes() == good and len(mirror.requests) == 1
    assert data.load_split(MNIST, SPLIT).shape == (10000,) and len(mirror.requests) == 1


@pytest.mark.parametrize("how", ["--data-dir", "env"])
def test_a_corrupt_file_the_user_named_is_an_error_not_a_download(mirror, tmp_path,
                                                                   monkeypatch, how):
    monkeypatch.setenv(download.MIRRORS_ENV, mirror.base("good"))
    bad = tmp_path / SPEC.name
    bad.write_bytes(b"\x00" * SPEC.size)
    if how == "env":
        monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match=str(bad)):
        data.load_split(MNIST, SPLIT, tmp_path if how == "--data-dir" else None)
    assert bad.read_bytes() == b"\x00" * SPEC.size and mirror.requests == []


def test_no_mirrors_at_all(tmp_path):
    with pytest.raises(DownloadError, match="no mirrors are listed"):
        download.fetch_file(MNIST, SPLIT, tmp_path, mirrors=())


def test_registry_mirrors_are_all_https():
    for ds in data.DATASETS.values():
        assert len(ds.mirrors) >= 2 and all(m.startswith("https://") for m in ds.mirrors)


# ---------------------------------------------------------------- the `data` command

def test_cli_data_fetch_then_verify(mirror, monkeypatch, capsys):
    from mnist_cnn.cli import main

    monkeypatch.setenv(download.MIRRORS_ENV, f"{mirror.base('html')} {mirror.base('good')}")
    assert main(["data", "verify"]) == 1  # nothing local yet
    assert main(["data", "fetch", "mnist"]) == 0
    err = capsys.readouterr().err
    assert err.count("downloading https://127.0.0.1") == 4  # not a tty: one line per file
    assert "/html/" not in err  # the HTML page was refused before any progress
    assert main(["data", "verify", "mnist"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == 4 and str(data.cache_dir()) in out


def test_cli_unreachable_mirrors_is_one_line(mirror, tmp_path, monkeypatch, capsys):
    from mnist_cnn.cli import main

    monkeypatch.setenv(download.MIRRORS_ENV, f"https://127.0.0.1:1/ {mirror.base('bad-gzip')}")
    assert main(["data", "fetch", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if not line.startswith("downloading ")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "127.0.0.1:1/mnist/" in err and "refused" in err and "cannot read" in err


def test_cli_subprocess_unreachable_mirrors_and_unknown_dataset(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, download.MIRRORS_ENV: "https://127.0.0.1:1/ https://mirror.invalid/",
           "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop(data.ENV_VAR, None)
    for argv, code, words in ((["data", "fetch"], 1, ["refused", "DNS lookup failed"]),
                              (["data", "verify", "cifar"], 2, ["unknown dataset 'cifar'"])):
        proc = subprocess.run([sys.executable, "-m", "mnist_cnn", *argv], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == code and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert all(w in proc.stderr for w in words), proc.stderr
