"""Several trained runs as one: `mnist-cnn ensemble RUN1 RUN2 ... --out ENS`.

The ensemble is a run directory like any other (evaluate, predict, serve, report and export
take it) whose answer is the mean of its members' probabilities:

    ENS/model.json          RunMeta with "members" (where each network came from) and the
                            first member's architecture (what summaries and the page show)
    ENS/members/01/ ...     each member's model.json, model.safetensors, summary.txt and
                            history.csv, written afresh from what was loaded and checked,
                            so the ensemble stays whole if the original runs are deleted
    ENS/summary.txt         every member's summary table

The folder is written as every run is (run.open_run): built in `.ENS.partial/` beside its
target under the lock `.ENS.lock` and moved into place whole, so a failure leaves nothing,
and an existing folder is replaced (with --overwrite) only once the new one is complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mnist_cnn import checkpoint
from mnist_cnn.averaging import Ensemble
from mnist_cnn.checkpoint import MAX_MEMBERS, RunMeta, Timing, load_model, member_dir
from mnist_cnn.errors import UsageError
from mnist_cnn.evaluate import Metrics, evaluate
from mnist_cnn.files import atomic_write_text
from mnist_cnn.model import Net
from mnist_cnn.summary import render_keras, summarize

RECIPE = "ensemble"  # model.json's recipe for an ensemble


@dataclass(frozen=True)
class EnsembleOutcome:
    out: Path
    members: list[RunMeta]
    test: Metrics  # the ensemble's, on its dataset's test set


def load_members(runs: list[str | Path]) -> list[tuple[Net, RunMeta]]:
    """Each run loaded and checked: 2..MAX_MEMBERS different single networks of one dataset."""
    if not 2 <= len(runs) <= MAX_MEMBERS:
        raise UsageError(f"an ensemble has 2 to {MAX_MEMBERS} members; {len(runs)} given")
    seen = [Path(r).resolve() for r in runs]
    for i, path in enumerate(seen):
        if path in seen[:i]:
            raise UsageError(f"{runs[i]}: listed twice; each member is one run")
    loaded: list[tuple[Net, RunMeta]] = []
    for run in runs:
        model, meta = load_model(run)  # ModelFileError names the damaged or missing file
        if not isinstance(model, Net):
            raise UsageError(f"{run}: is an ensemble itself; list its members' runs instead")
        if loaded and meta.dataset != loaded[0][1].dataset:
            raise UsageError(f"{run}: a {meta.dataset} model; {runs[0]} is a "
                             f"{loaded[0][1].dataset} model, and every member must read "
                             "the same dataset")
        loaded.append((model, meta))
    return loaded


def make_ensemble(runs: list[str | Path], out: str | Path, data_dir: str | Path | None = None,
                  overwrite: bool = False) -> EnsembleOutcome:
    """Write the ensemble of `runs` to the folder `out`, with its test-set metrics. An
    existing `out` is refused unless `overwrite`, which replaces it as a whole."""
    from mnist_cnn import data
    from mnist_cnn.run import open_run

    out = Path(out)
    _check_out(out, runs, overwrite)
    members = load_members(runs)
    metas = [meta for _, meta in members]
    with open_run(out, overwrite, what="writing this ensemble") as target:
        model = Ensemble([net for net, _ in members]).eval()
        precision = "bf16" if all(m.timing.precision == "bf16" for m in metas) else "fp32"
        ds, recorded = data.get_dataset(metas[0].dataset), metas[0].data_dir
        x_test, y_test = data.load_test(ds.name, data_dir, recorded=recorded)
        test = evaluate(model, x_test, y_test, precision)
        found = data.found_in(ds, data.TEST_SPLITS, data_dir, recorded)
        meta = _ensemble_meta(runs, metas, test, precision, found)
        _write_files(target.staging, members, meta)
        target.folder.commit()
    return EnsembleOutcome(target.run_dir, metas, test)


def _check_out(out: Path, runs: list[str | Path], overwrite: bool) -> None:
    """What open_run does not know: an ensemble is a run too, and --overwrite must not
    remove a member (or a folder holding one)."""
    if not overwrite and (out / checkpoint.META).is_file():
        raise UsageError(f"{out} already holds a run; choose another --out, or add "
                         "--overwrite to replace it as a whole")
    target = out.resolve()
    for run in runs:
        member = Path(run).resolve()
        if member == target or target in member.parents:
            raise UsageError(f"--out {out}: holds the member {run}; choose another --out")


def _ensemble_meta(runs: list[str | Path], metas: list[RunMeta], test: Metrics,
                   precision: str, found: Path | None) -> RunMeta:
    from mnist_cnn.run import PREPROCESSING, versions

    seconds = [m.timing.train_seconds for m in metas]
    return RunMeta(
        architecture=metas[0].architecture, dataset=metas[0].dataset, recipe=RECIPE,
        hyperparameters={"members": len(metas), "combine": "mean of probabilities"},
        preprocessing=PREPROCESSING,
        metrics={"test_loss": test.loss, "test_accuracy": test.accuracy},
        timing=Timing(sum(seconds) if None not in seconds else None, None, None, precision),
        versions=versions(), date=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        data_dir=None if found is None else str(found), members=tuple(str(r) for r in runs))


def _write_files(folder: Path, members: list[tuple[Net, RunMeta]], meta: RunMeta) -> None:
    """members/NN (each a run of its own), summary.txt, and model.json last (a folder
    holding model.json is a complete run)."""
    from mnist_cnn.run import write_run_files

    tables = []
    for i, (net, member_meta) in enumerate(members):
        source = Path(meta.members[i])
        write_run_files(member_dir(folder, i), net, member_meta,
                        checkpoint.read_history(source))
        tables.append(f"Member {i + 1:02d}: {source}\n{render_keras(summarize(net.arch))}")
    atomic_write_text(folder / checkpoint.SUMMARY, "\n".join(tables))
    checkpoint.save_meta(folder, meta)
