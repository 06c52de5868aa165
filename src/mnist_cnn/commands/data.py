"""`mnist-cnn data where|verify|fetch`: the dataset files."""

from __future__ import annotations

import argparse

from mnist_cnn.commands.common import add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset files: where they are, whether they verify, "
                       "get them",
                       description="Where the dataset's four IDX files are found, whether "
                       "they verify against their pinned sha256, or download them.")
    p.add_argument("action", choices=("where", "verify", "fetch"),
                   help="where: the files found and the places searched; verify: check "
                        "every file against its pinned sha256; fetch: download what is "
                        "missing (or fails verification in the cache) from HTTPS mirrors")
    p.add_argument("dataset", nargs="?", default="mnist", help="mnist (default), fashion-mnist")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnist_cnn import data
    from mnist_cnn.console import DownloadProgress
    from mnist_cnn.errors import DataError

    ds = data.get_dataset(args.dataset)
    if args.action == "where":
        from mnist_cnn.download import mirrors_for

        for why, place in data.search_dirs(args.data_dir):
            print(f"searched ({why}): {place}")
        print(f"mirrors (if nothing is found): {' '.join(mirrors_for(ds))}")
    if args.action == "fetch":
        progress = DownloadProgress()
        for split in data.SPLITS:
            data.load_split(ds, split, args.data_dir, progress=progress)
    all_ok = True
    for split in data.SPLITS:
        spec = ds.files[split]
        path = data.find_file(ds, split, args.data_dir)
        if args.action == "where":
            print(f"{spec.name:<25} {path or 'not found'}")
            continue
        ok, status = path is not None, "not found"
        if path is not None:
            try:
                data.read_verified(path, spec)
                status = f"ok  {path}"
            except DataError as exc:
                ok, status = False, f"FAILED  {exc}"
        all_ok &= ok
        print(f"{spec.name:<25} {status}")
    return 0 if all_ok else 1
