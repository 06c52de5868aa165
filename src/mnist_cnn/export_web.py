"""The draw-a-digit page as a static folder: open index.html from disk or put the folder on
any static host. The network runs in the browser (web/engine.js); nothing loads from
elsewhere, and no server is needed (photos, which need the server's preprocessing, are
switched off there).

    OUT/index.html       the page: the same file `mnist-cnn serve` serves
    OUT/static/          the page's scripts and style (engine, preprocessing, views, app)
    OUT/model.js         the model: architecture, summary, metrics, the "not sure" line
                         when `mnist-cnn report` has chosen one, and the weights as a
                         base64 safetensors file, in one script (browsers refuse fetch() of
                         file:// URLs, but load a <script> from beside the page)
    OUT/README.txt       what this is and how to publish it

`model_script` is also what `mnist-cnn serve` answers at /model.js, so the served page and
the exported one run the same code on the same bytes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mnist_cnn.errors import MnistCnnError, UsageError

if TYPE_CHECKING:
    from mnist_cnn.checkpoint import RunMeta

WEB_DIR = Path(__file__).parent / "web"
PAGE = "index.html"
MODEL_SCRIPT = "model.js"
README = "README.txt"
README_FIRST_LINE = "mnist-cnn web export"  # marks a folder this module wrote (safe to replace)
PAGE_SUFFIXES = (".js", ".css")  # what goes to OUT/static/


def model_script(model: torch.nn.Module, meta: RunMeta | None, server: bool = False) -> str:
    """The JavaScript that hands the page its model: `window.MNIST_MODEL = {...}`.

    The weights are the model's state as a safetensors file (little-endian float32, a JSON
    header naming each tensor), base64-encoded; engine.js parses it. `server` tells the page
    whether /api/predict is there for photos. An ensemble's first member is the model the
    page draws; the others follow in "members", and the page answers with the mean of all
    their probabilities.
    """
    from mnist_cnn.averaging import Ensemble
    from mnist_cnn.summary import render_keras, summarize

    nets = list(model.members) if isinstance(model, Ensemble) else [model]
    payload = {
        **_network(nets[0]),
        "summary": render_keras(summarize(nets[0].arch)),
        "meta": _facts(meta),
        "calibration": _calibration(model.state_dict(), meta),  # the whole model's line
        "server": server,
        "members": [_network(net) for net in nets[1:]],
    }
    # JSON is a JavaScript expression; ensure_ascii keeps the file plain ASCII.
    return "window.MNIST_MODEL = " + json.dumps(payload, ensure_ascii=True) + ";\n"


def _network(net: torch.nn.Module) -> dict[str, Any]:
    """One network as the page's engine reads it: its architecture and base64 weights."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
               for k, v in net.state_dict().items()}
    return {"architecture": net.arch.to_dict(),
            "weights": base64.b64encode(save(tensors)).decode("ascii")}


def _facts(meta: RunMeta | None) -> dict[str, Any]:
    """What the page says about the run: its dataset, recipe, metrics and date."""
    if meta is None:
        return {}
    return {"dataset": meta.dataset, "recipe": meta.recipe, "metrics": meta.metrics,
            "date": meta.date, "members": len(meta.members)}


def _calibration(tensors: dict[str, torch.Tensor], meta: RunMeta | None) -> dict | None:
    """The page's "not sure" line from model.json (written by `mnist-cnn report`): None when
    the run has none, {"stale": true} when it was chosen for other weights than these."""
    from mnist_cnn.checkpoint import weights_digest

    cal = meta.calibration if meta is not None else None
    if cal is None:
        return None
    if cal.weights != weights_digest(tensors):
        return {"stale": True}
    return {"not_sure_below": cal.not_sure_below, "target_accuracy": cal.target_accuracy,
            "fitted_on": cal.fitted_on, "images": cal.images}


def export_web(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the page for the run in `run_dir` as a static folder `out_dir`; return its path.

    The folder is written beside its final place and moved there whole, so a failure leaves
    no half-written export. An existing `out_dir` is replaced only if it is empty or an
    earlier export. Raises ModelFileError for a bad run directory, UsageError for an
    `out_dir` that holds something else.
    """
    from mnist_cnn.checkpoint import load_model

    model, meta = load_model(run_dir)  # validates the run: ModelFileError if it is bad
    out = Path(out_dir).resolve()
    _check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise MnistCnnError(f"{out}: cannot write here ({exc.strerror or exc})") from None
    try:
        _write_folder(work, model, meta, Path(run_dir))
        _move_into_place(work, out)
    except OSError as exc:
        raise MnistCnnError(f"{out}: cannot write the export ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _check_target(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    if any(out.iterdir()) and not _is_export(out):
        raise UsageError(f"{out} is a folder with other files in it; choose a new or empty "
                         "folder (an earlier web export there would be replaced)")


def _is_export(folder: Path) -> bool:
    try:
        with (folder / README).open(encoding="utf-8") as fh:
            return fh.readline().strip() == README_FIRST_LINE
    except (OSError, UnicodeDecodeError):
        return False


def _write_folder(work: Path, model: torch.nn.Module, meta: RunMeta, run: Path) -> None:
    (work / "static").mkdir()
    shutil.copyfile(WEB_DIR / PAGE, work / PAGE)
    for path in sorted(WEB_DIR.iterdir()):
        if path.suffix in PAGE_SUFFIXES:
            shutil.copyfile(path, work / "static" / path.name)
    (work / MODEL_SCRIPT).write_text(model_script(model, meta), encoding="ascii")
    (work / README).write_text(_readme(model, meta, run), encoding="utf-8")
    for path in [work, *work.rglob("*")]:  # mkdtemp makes an owner-only folder: a site is shared
        path.chmod(0o755 if path.is_dir() else 0o644)


def _move_into_place(work: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an earlier export there is swapped out first."""
    if not out.exists():
        os.replace(work, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.replace(out, old / out.name)
    try:
        os.replace(work, out)
    except OSError:
        os.replace(old / out.name, out)  # put the earlier export back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _readme(model: torch.nn.Module, meta: RunMeta, run: Path) -> str:
    accuracy = meta.metrics.get("test_accuracy")
    params = sum(p.numel() for p in model.state_dict().values())
    facts = [f"architecture {model.arch.name!r}, {params:,} parameters",
             f"trained on {meta.dataset}"]
    if meta.members:  # the page draws the first member and answers with the mean of all
        facts[0] = (f"an ensemble of {len(meta.members)} networks, the first of "
                    f"architecture {model.arch.name!r}; {params:,} parameters in all")
    if isinstance(accuracy, float):
        facts.append(f"test accuracy {accuracy:.2%}")
    return f"""{README_FIRST_LINE}

The draw-a-digit page for one trained model ({'; '.join(facts)}), exported from the run
{run.name!r}. It needs no server: the network runs in the browser.

Open index.html in a browser (double-click it), or copy this whole folder to any static
web host (a course website, an intranet share). Nothing is loaded from
anywhere else.

  index.html    the page
  static/       its scripts and style: engine.js computes the network, gradient.js its
                saliency maps, arithmetic.js the numbers behind a clicked map pixel,
                preprocess.js turns a drawing into a 28x28 MNIST-style digit, i18n.js holds
                the page's words in English and Korean, view.js, detail.js, pad.js and
                app.js draw the page
  model.js      the model: architecture, summary, the "not sure" line when the run has a
                report, and the weights (a safetensors file, base64-encoded), as a script so
                that it also loads from disk

Photos of digits need the server's preprocessing (paper, shadows, camera noise), so the
photo button is switched off here; `mnist-cnn serve RUN` offers it.
"""
