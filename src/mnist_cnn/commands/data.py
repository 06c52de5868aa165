"""`mnist-cnn data where|verify|fetch`: the dataset files."""

from __future__ import annotations

import argparse

from mnist_cnn.commands.common import add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset files: where they are, whether they verify, "
                       "get them",
                       description="Where the dataset's four IDX files are found, whether "
                       "they verify against their pinned sha256, or download them. Exits 1 "
                       "when a file is missing (where, verify) or fails (verify).")
    p.add_argument("action", choices=("where", "verify", "fetch"),
                   help="where: the files found and the places searched; verify: check "
                        "every file against its pinned sha256; fetch: download what is "
                        "missing (or fails verification in the cache) from HTTPS mirrors, "
                        "into the cache or, with --data-dir, into that folder")
    p.add_argument("dataset", nargs="?", default="mnist", help="mnist (default), fashion-mnist")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn import data

    ds = data.get_dataset(args.dataset)
    data.check_data_dir(args.data_dir)
    if args.action == "where":
        from mnist_cnn.download import mirrors_for

        for why, place in data.search_dirs(args.data_dir):
            print(f"searched ({why}): {place}")
        if args.data_dir is None:
            print(f"mirrors (if nothing is found): {' '.join(mirrors_for(ds))}")
    if args.action == "fetch":
        _fetch(ds, args.data_dir)
    checks = data.check_files(ds, args.data_dir, verify=args.action != "where")
    for check in checks:
        if check.path is None:
            status = "not found"
        elif args.action == "where":
            status = str(check.path)
        else:
            status = f"ok  {check.path}" if check.ok else f"FAILED  {check.problem}"
        print(f"{check.name:<25} {status}")
    return 0 if all(check.ok for check in checks) else 1


def _fetch(ds, data_dir: str | None) -> None:
    """Download the missing files: into the cache, or into --data-dir's folder."""
    from pathlib import Path

    from mnist_cnn import data
    from mnist_cnn.console import DownloadProgress
    from mnist_cnn.download import fetch_file

    progress = DownloadProgress()
    if data_dir is None:
        data.load_splits(ds, data.SPLITS, progress=progress)
        return
    for split in data.SPLITS:
        if data.find_file(ds, split, data_dir) is None:
            fetch_file(ds, split, Path(data_dir), progress=progress)
