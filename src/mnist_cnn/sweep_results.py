"""A sweep's results: every trial of the study as a row, written as trials.csv, the list
of the best runs (top.txt, for an ensemble) and a plot (sweep.png)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_cnn.sweep import Sweep


@dataclass(frozen=True)
class TrialRow:
    """One trial of the study, as the table, the CSV and the plot show it."""

    number: int
    state: str  # COMPLETE, FAIL, RUNNING
    val_accuracy: float | None  # the objective
    test_accuracy: float | None  # information only
    train_seconds: float | None
    params: dict[str, Any]
    run: str | None


def results(sweep: Sweep) -> list[TrialRow]:
    """Every trial of the study, best validation accuracy first (failed ones last)."""
    rows = [TrialRow(t.number, t.state.name, t.value, t.user_attrs.get("test_accuracy"),
                     t.user_attrs.get("train_seconds"),
                     {k: Path(v).name if k == "arch" and isinstance(v, str) else v
                      for k, v in t.params.items()}, t.user_attrs.get("run"))
            for t in sweep.open().get_trials(deepcopy=False)]
    return sorted(rows, key=lambda r: (r.val_accuracy is None, -(r.val_accuracy or 0),
                                       r.number))


def write_results(rows: list[TrialRow], out: Path, top: int) -> dict[str, Path]:
    """trials.csv (every trial), top.txt (the best `top` runs, one a line), sweep.png."""
    import csv
    import io

    from mnist_cnn.files import atomic_write_text

    keys = sorted({k for r in rows for k in r.params})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial", "state", "val_accuracy", "test_accuracy", "train_seconds",
                     *keys, "run"])
    for r in rows:
        writer.writerow([r.number, r.state, r.val_accuracy, r.test_accuracy, r.train_seconds,
                         *(r.params.get(k) for k in keys), r.run])
    paths = {"csv": out / "trials.csv", "top": out / "top.txt", "plot": out / "sweep.png"}
    atomic_write_text(paths["csv"], buf.getvalue())
    best = [r.run for r in rows if r.state == "COMPLETE" and r.run][:top]
    atomic_write_text(paths["top"], "".join(f"{run}\n" for run in best))
    plot(rows, paths["plot"])
    return paths


def plot(rows: list[TrialRow], path: Path) -> None:
    """Validation accuracy by trial (with the best so far), and against the learning rate
    (or the first other setting that varies)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnist_cnn.files import atomic_write

    done = sorted((r for r in rows if r.val_accuracy is not None), key=lambda r: r.number)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    numbers, values = [r.number for r in done], [100 * r.val_accuracy for r in done]
    left.plot(numbers, values, "o", label="trial")
    left.step(numbers, [max(values[:i + 1]) for i in range(len(values))], where="post",
              label="best so far")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.set(xlabel="trial", ylabel="validation accuracy (%)", title="the study")
    left.legend()
    varied = [k for k in ("lr", *sorted({k for r in done for k in r.params}))
              if len({str(r.params.get(k)) for r in done}) > 1]
    if varied:
        key = varied[0]
        xs = [r.params.get(key) for r in done]
        right.plot([str(x) if isinstance(x, str) else x for x in xs], values, "o")
        if key == "lr":
            right.set_xscale("log")
        right.set(xlabel=key, ylabel="validation accuracy (%)", title=f"against {key}")
    else:
        right.set_axis_off()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
