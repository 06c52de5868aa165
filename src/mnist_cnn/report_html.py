"""The report's page (index.html, English and Korean) and report.md (English).

Both languages are rendered here from report_text.py's catalogues into one page; a small
script shows the one matching the browser's language and offers a switch, so the page still
opens from disk. Without the script the English view shows. Blocks that are program output
(the Keras summary, model.json) are marked translate="no" and stay as the program prints
them.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_cnn.calibration import NOT_SURE_ACCURACY
from mnist_cnn.report_text import CATALOGUES, LANGUAGE_NAMES, Translator, class_name, translator

if TYPE_CHECKING:
    from mnist_cnn.report import ReportData

TRUST_SECTIONS = {"saliency": ("saliency_mistakes", "saliency_examples"),
                  "calibration": ("reliability",),
                  "robustness": ("robustness", "robustness_examples")}
_TRUST_STEMS = {stem for stems in TRUST_SECTIONS.values() for stem in stems}
esc = html.escape


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def headline(report: ReportData, t: Translator | None = None) -> list[tuple[str, str]]:
    """The numbers a reader wants first, as (label, value) pairs (English by default)."""
    t = t or translator("en")
    meta, m = report.meta, report.metrics
    hyper, timing = meta.hyperparameters, meta.timing
    wrong = int(m.count - np.trace(m.confusion))
    rows = [(t("head.dataset"), meta.dataset),
            (t("head.architecture"), t("head.architecture_value", name=meta.architecture.name,
                                       params=f"{report.summary.total_params:,}")),
            (t("head.accuracy"), t("head.accuracy_value", accuracy=_pct(m.accuracy),
                                   right=f"{m.count - wrong:,}", total=f"{m.count:,}")),
            (t("head.loss"), f"{m.loss:.4f}"), (t("head.mistakes"), f"{wrong:,}")]
    if meta.members:  # the numbers are the ensemble's; the pictures its first network's
        rows.insert(2, (t("head.ensemble"), t("head.ensemble_value", count=len(meta.members))))
    if report.history:
        last = report.history[-1]
        rows.append((t("head.epochs"), str(int(last["epoch"]))))
        if "val_accuracy" in last:
            rows.append((t("head.val_accuracy"), _pct(last["val_accuracy"])))
    rows += [(t(key), str(value)) for key, value in (
        ("head.recipe", meta.recipe), ("head.batch_size", hyper.get("batch_size")),
        ("head.lr", hyper.get("lr"))) if value is not None]
    if timing.train_seconds is not None:
        rows.append((t("head.train_time"), t(
            "head.train_time_value", seconds=f"{timing.train_seconds:.1f}",
            device=timing.device or "?", precision=timing.precision)))
    if meta.source and "keras_file" in meta.source:  # imported: no training date to show
        return rows + [(t("head.source"), t("head.imported_value",
                                             file=meta.source["keras_file"]))]
    return rows + [(t("head.trained"), meta.date or "?")]


def calibration_rows(report: ReportData, t: Translator) -> list[tuple[str, str]]:
    """The calibration table: where T was fitted, T, ECE before/after, the threshold."""
    cal, part = report.trust.calibration, report.trust.held_out
    span = {"count": f"{len(part.labels):,}", "first": f"{part.first:,}",
            "last": f"{part.first + len(part.labels) - 1:,}"}
    fitted = t("cal.fit_training" if part.seen_in_training else "cal.fit_validation", **span)
    flagged = cal.test_flagged
    total = int(cal.before.counts.sum())
    rows = [(t("cal.fit_on"), fitted),
            (t("cal.temperature"), t("cal.t_sharpen" if cal.temperature < 1 else "cal.t_soften",
                                     t=f"{cal.temperature:.3f}")),
            (t("cal.ece_before"), _pct(cal.before.ece)), (t("cal.ece_after"), _pct(cal.after.ece)),
            (t("cal.not_sure"), t("cal.not_sure_value", raw=_pct(cal.not_sure_raw),
                                  calibrated=_pct(cal.not_sure_calibrated)))]
    value = t("cal.flagged_none") if not flagged["count"] else t(
        "cal.flagged_value", count=f"{flagged['count']:,}",
        share=_pct(flagged["count"] / total), flagged=_pct(flagged["accuracy_flagged"]),
        rest=_pct(flagged["accuracy_rest"]))
    return rows + [(t("cal.flagged"), value)]


def robustness_rows(report: ReportData, t: Translator) -> list[tuple[str, list[str], list[str]]]:
    """(family label, levels, accuracies) for every perturbation family."""
    # One decimal: on a few hundred images every accuracy is a multiple of a few tenths.
    return [(t(f"fam.{family}"), [f"{level:g}" for level, _ in rows],
             [f"{acc:.1%}" for _, acc in rows])
            for family, rows in report.trust.robustness.accuracy.items()]


def saliency_text(report: ReportData, t: Translator) -> str:
    """The saliency paragraph, with the steps and the measured completeness error."""
    from mnist_cnn.report_trust import IG_STEPS

    median, worst = report.trust.completeness()
    return t("p.saliency", steps=IG_STEPS, median=_pct(median), max=_pct(worst))


def _caption_key(stem: str) -> str:
    return "feature_maps" if stem.startswith("feature_maps") else stem


def _figure(stem: str, path: Path, t: Translator, lang: str) -> str:
    return (f'<figure id="{stem}-{lang}"><img src="{esc(path.name)}" '
            f'alt="{esc(t("fig." + stem))}"><figcaption>{esc(t("cap." + stem))}'
            f"</figcaption></figure>")


def _table(rows: list[tuple[str, str]]) -> str:
    body = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f"<table>\n{body}\n</table>"


def _trust_html(report: ReportData, paths: dict[str, Path], t: Translator, lang: str) -> str:
    figs = {section: "\n".join(_figure(s, paths[s], t, lang) for s in stems if s in paths)
            for section, stems in TRUST_SECTIONS.items()}
    warning = (f'<p class="warning">{esc(t("cal.seen_warning"))}</p>'
               if report.trust.held_out.seen_in_training else "")
    robust = "\n".join(
        f'<tr><th rowspan="2">{esc(name)}</th>{"".join(f"<td>{esc(v)}</td>" for v in levels)}'
        f'</tr>\n<tr class="acc">{"".join(f"<td>{esc(v)}</td>" for v in accs)}</tr>'
        for name, levels, accs in robustness_rows(report, t))
    sweep = report.trust.robustness
    return "\n".join([
        f'<h2>{esc(t("sec.saliency"))}</h2>', f"<p>{esc(saliency_text(report, t))}</p>",
        figs["saliency"],
        f'<h2>{esc(t("sec.calibration"))}</h2>', f'<p>{esc(t("p.calibration"))}</p>',
        warning, _table(calibration_rows(report, t)),
        f'<p>{esc(t("cal.rule", target=f"{NOT_SURE_ACCURACY:.0%}"))}</p>',
        f'<p>{esc(t("cal.json"))}</p>', figs["calibration"],
        f'<h2>{esc(t("sec.robustness"))}</h2>',
        f'<p>{esc(t("p.robustness", count=f"{sweep.count:,}", plain=_pct(sweep.plain_accuracy)))}'
        f"</p>", f'<table class="robust">\n{robust}\n</table>', figs["robustness"]])


def _view(report: ReportData, paths: dict[str, Path], run_dir: str | Path, lang: str) -> str:
    """The whole page body in one language."""
    t = translator(lang)
    title = t("title", run=Path(run_dir).name)
    lesson = "\n".join(_figure(stem, path, t, lang) for stem, path in paths.items()
                       if not stem.startswith("feature_maps") and stem not in _TRUST_STEMS)
    maps = [(stem, path) for stem, path in paths.items() if stem.startswith("feature_maps")]
    if maps:  # ten tall figures: the first open, the others one click away
        lesson += (f'\n<h2>{esc(t("sec.feature_maps"))}</h2>\n'
                   f'<p>{esc(t("cap.feature_maps"))}</p>\n')
        for i, (stem, path) in enumerate(maps):
            name = class_name(lang, report.classes[int(stem.rsplit("_", 1)[1])])
            lesson += (f'<details id="{stem}-{lang}"{" open" if i == 0 else ""}><summary>'
                       f'{esc(t("class", name=name))}</summary><img src="{esc(path.name)}" '
                       f'alt="{esc(t("fig.feature_maps", name=name))}"></details>\n')
    note = t("lang.note")
    meta = {k: v for k, v in report.meta.to_dict().items() if k != "architecture"}
    return "\n".join([
        f'<div class="view" lang="{lang}" data-title="{esc(title)}"'
        f'{"" if lang == "en" else " hidden"}>', f"<h1>{esc(title)}</h1>",
        f'<p class="note">{esc(note)}</p>' if note else "", _table(headline(report, t)),
        f'<h2>{esc(t("sec.summary"))}</h2>',
        f'<pre translate="no">{esc(_summary_text(report))}</pre>',
        f'<h2>{esc(t("sec.figures"))}</h2>', lesson, _trust_html(report, paths, t, lang),
        f'<h2>{esc(t("sec.meta"))}</h2>',
        f'<pre translate="no">{esc(json.dumps(meta, indent=2))}</pre>', "</div>"])


def render_html(report: ReportData, paths: dict[str, Path], run_dir: str | Path) -> str:
    """A self-contained page in every language: images by relative path, opens from disk."""
    switch = "".join(f'<button type="button" data-lang="{lang}" lang="{lang}">'
                     f"{esc(LANGUAGE_NAMES[lang])}</button>" for lang in CATALOGUES)
    views = "\n".join(_view(report, paths, run_dir, lang) for lang in CATALOGUES)
    parts = {"title": esc(translator("en")("title", run=Path(run_dir).name)),
             "switch": switch, "views": views}
    # One pass, not str.format: the CSS and the script are full of braces.
    return re.sub(r"\{(title|switch|views)\}", lambda m: parts[m.group(1)], _PAGE)


def _summary_text(report: ReportData) -> str:
    from mnist_cnn.summary import render_keras

    return render_keras(report.summary)


def render_markdown(report: ReportData, paths: dict[str, Path], run_dir: str | Path) -> str:
    """report.md (English): the headline numbers, the figures by relative path, then the
    saliency, calibration and robustness sections with their tables."""
    t = translator("en")
    lines = [f"# {t('title', run=Path(run_dir).name)}", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in headline(report, t)]
    lines += ["", "```", _summary_text(report).rstrip(), "```", ""]

    def figure(stem: str) -> str:
        return f"![{stem}]({paths[stem].name})\n\n{t('cap.' + _caption_key(stem))}\n"

    lines += [figure(stem) for stem in paths if stem not in _TRUST_STEMS]
    lines += [f"## {t('sec.saliency')}", "", saliency_text(report, t), ""]
    lines += [figure(s) for s in TRUST_SECTIONS["saliency"] if s in paths]
    lines += [f"## {t('sec.calibration')}", "", t("p.calibration"), ""]
    if report.trust.held_out.seen_in_training:
        lines += [f"**{t('cal.seen_warning')}**", ""]
    lines += ["| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in calibration_rows(report, t)]
    lines += ["", t("cal.rule", target=f"{NOT_SURE_ACCURACY:.0%}"), "", t("cal.json"), ""]
    lines += [figure(s) for s in TRUST_SECTIONS["calibration"] if s in paths]
    sweep = report.trust.robustness
    lines += [f"## {t('sec.robustness')}", "", t("p.robustness", count=f"{sweep.count:,}",
                                                   plain=_pct(sweep.plain_accuracy)), ""]
    for name, levels, accs in robustness_rows(report, t):
        lines += [f"| {name} | " + " | ".join(levels) + " |",
                  "|---|" + "---|" * len(levels), f"| {t('rob.accuracy')} | "
                  + " | ".join(accs) + " |", ""]
    lines += [figure(s) for s in TRUST_SECTIONS["robustness"] if s in paths]
    return "\n".join(lines)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body { font-family: system-ui, "Noto Sans CJK KR", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; } th, td { padding: 0.25em 0.8em; text-align: left; }
tr:nth-child(odd) { background: #f3f3f3; }
table.robust tr { background: none; } table.robust tr.acc { border-bottom: 1px solid #ccc; }
table.robust td { text-align: right; } table.robust tr:not(.acc) td { color: #777; }
figure { margin: 2.5em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #444; margin-top: 0.4em; }
summary { cursor: pointer; font-weight: bold; margin: 0.6em 0; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.warning { background: #fff4e5; border-left: 4px solid #e08a00; padding: 0.6em 1em; }
.note { color: #555; }
nav.lang { float: right; } nav.lang button { margin-left: 0.3em; cursor: pointer; }
nav.lang button[aria-pressed="true"] { font-weight: bold; }
</style></head><body>
<nav class="lang">{switch}</nav>
{views}
<script>
(function () {
  var KEY = "mnist-cnn-report-lang";
  var views = document.querySelectorAll(".view");
  var buttons = document.querySelectorAll("nav.lang button");
  function show(lang) {
    views.forEach(function (v) { v.hidden = v.lang !== lang; });
    buttons.forEach(function (b) { b.setAttribute("aria-pressed", b.dataset.lang === lang); });
    document.documentElement.lang = lang;
    var shown = document.querySelector('.view[lang="' + lang + '"]');
    if (shown) { document.title = shown.dataset.title; }
  }
  var saved = null;
  try { saved = localStorage.getItem(KEY); } catch (e) { /* storage off: not remembered */ }
  var browser = (navigator.language || "").toLowerCase().indexOf("ko") === 0 ? "ko" : "en";
  show(saved || browser);
  buttons.forEach(function (b) {
    b.addEventListener("click", function () {
      show(b.dataset.lang);
      try { localStorage.setItem(KEY, b.dataset.lang); } catch (e) { /* not remembered */ }
    });
  });
})();
</script>
</body></html>
"""
