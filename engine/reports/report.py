"""report.html: the analysis as one self-contained page a person can put in front of a supervisor.

Sections: what was computed (header), the leaderboard coloured by band with interval bars,
metric charts, the CAM grids, the split by who was right, per-model diagnosis (written
summary, recommendations, per-class accuracy, worst predictions, confusion, confused pairs),
and training curves when the workspace has the runs. Figures arrive as PNG bytes and are
inlined; numbers are shown to 4 decimals with the exact value in ``data-value``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.api.catalogue import BANDED_METRICS, OUTCOME_LABELS, OUTCOME_SPLITS
from engine.api.results import Stat
from engine.reports import html as h
from engine.reports.bands import BANDS_BEST_FIRST, METRIC_LABELS, band_colour, band_tint
from engine.reports.gallery import FigureTask
from engine.reports.source import AnalysisSource


def _band(band: str | None) -> str:
    if not band:
        return "–"
    return f'<span class="band" style="background:{band_colour(band)}">{h.esc(band)}</span>'


def _legend() -> str:
    items = "".join(f'<span><span class="swatch" style="background:{band_colour(b)}"></span>{b}</span>'
                    for b in BANDS_BEST_FIRST)
    rule = ("Pearson, L2 similarity: Excellent &gt; 0.85, Good ≥ 0.70, Acceptable ≥ 0.50; IoU: &gt; 0.75, ≥ 0.60, "
            "≥ 0.40; KL: &lt; 0.15, ≤ 0.30, ≤ 0.60; otherwise Problematic. Overall: mean of the four scores "
            "(3…0), rounded half up.")
    return f'<div class="legend">{items}</div><p class="note">{rule}</p>'


def _interval(stat: Stat, band: str | None, scale: tuple[float, float]) -> str:
    """A small bar: the 95% interval as a band-coloured span, the mean as a tick, on ``scale``."""
    mean, low, high = stat.mean, stat.ci_low, stat.ci_high
    lower, upper = scale
    if mean is None or low is None or high is None or upper <= lower:
        return ""

    def pct(v: float) -> float:
        return max(0.0, min(100.0, 100.0 * (v - lower) / (upper - lower)))

    title = f"95% interval {low:.4f} – {high:.4f}"
    width = max(pct(high) - pct(low), 1)
    return (f'<span class="interval" title="{title}"><i style="left:{pct(low):.1f}%;width:{width:.1f}%;'
            f'background:{band_colour(band)}"></i><b style="left:{pct(mean):.1f}%"></b></span>')


def _stat(stat: Stat | int | None, band: str | None = None, scale: tuple[float, float] | None = None) -> str:
    if not isinstance(stat, Stat):  # a missing statistic (an int is a count, never a statistic)
        return h.numeric_cell(None)
    return h.numeric_cell(stat.mean, extra=_interval(stat, band, scale) if scale else "")


def _scale(source: AnalysisSource, metric: str) -> tuple[float, float]:
    """One axis per leaderboard column so its bars compare: [0, 1] widened to every interval."""
    stats = [p.metrics[metric] for p in source.pairs]
    lows = [s.ci_low for s in stats if s.ci_low is not None]
    highs = [s.ci_high for s in stats if s.ci_high is not None]
    return min([0.0, *lows]), max([1.0, *highs])


def leaderboard(source: AnalysisSource) -> str:
    scales = {metric: _scale(source, metric) for metric in BANDED_METRICS}
    columns = [h.Column("student"), h.Column("method"), h.Column("band"),
               h.Column("accuracy", True), h.Column("agreement", True, "top-1 agreement with the teacher")]
    columns += [h.Column(METRIC_LABELS[m], True, "mean with 95% bootstrap interval") for m in BANDED_METRICS]
    columns += [h.Column("output KL", True, "KL(softmax(teacher) ‖ softmax(student))"), h.Column("valid maps", True)]
    rows, attrs = [], []
    for pair in source.pairs:
        student = source.model_entry(pair.student)
        cells = [h.esc(pair.student), h.esc(pair.method or "–"), _band(pair.band),
                 _stat(student.accuracy), _stat(pair.agreement)]
        for metric in BANDED_METRICS:
            entry = pair.metrics[metric]
            cells.append(_stat(entry, entry.band, scales[metric]))
        cells += [_stat(pair.output_kl), h.numeric_cell(pair.n_valid, 0)]
        rows.append(cells)
        attrs.append(f'data-student="{h.esc(pair.student)}" style="background:{band_tint(pair.band)}"')
    return _legend() + h.table(columns, rows, "leaderboard", attrs)


def models_table(source: AnalysisSource) -> str:
    columns = [h.Column("model"), h.Column("role"), h.Column("architecture"), h.Column("CAM layer"),
               h.Column("parameters", True),
               h.Column("accuracy", True), h.Column("95% interval"), h.Column("checkpoint accuracy", True),
               h.Column("mean confidence", True), h.Column("degenerate maps", True)]
    has_mask = any(m.mask is not None for m in source.models)
    if has_mask:
        columns += [h.Column("pointing game", True), h.Column("energy in mask", True)]
    rows = []
    for model in source.models:
        acc = model.accuracy
        interval = (f'<span class="nowrap">{acc.ci_low:.4f} – {acc.ci_high:.4f}</span>'
                    if acc.ci_low is not None and acc.ci_high is not None else "–")
        layer = model.tap or source.results.cam.layers.get(model.name, "–")
        row = [h.esc(model.name), h.esc(model.role), h.esc(f"{model.arch} ×{model.width}"),
               h.esc(layer), h.numeric_cell(model.params, 0), _stat(acc), interval,
               h.numeric_cell(model.checkpoint_accuracy), h.numeric_cell(model.mean_confidence),
               h.numeric_cell(model.degenerate, 0)]
        if has_mask:
            mask = model.mask
            row += [_stat(mask.pointing_game if mask else None), _stat(mask.energy_in_mask if mask else None)]
        rows.append(row)
    return h.table(columns, rows, "models")


def splits_table(source: AnalysisSource) -> str:
    columns = [h.Column("student"), h.Column("split")]
    columns += [h.Column("n", True)] + [h.Column(METRIC_LABELS[m], True) for m in BANDED_METRICS]
    rows = []
    for pair in source.pairs:
        for key in OUTCOME_SPLITS:
            split = pair.splits.get(key)
            rows.append([h.esc(pair.student), h.esc(OUTCOME_LABELS[key]), h.numeric_cell(split.n if split else None, 0)]
                        + [_stat(split.metrics.get(m) if split else None) for m in BANDED_METRICS])
    return h.table(columns, rows, "splits")


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "–"  # no image had valid maps
    return "passed" if passed else "<strong>failed</strong>: the maps barely depend on the weights"


def checks(source: AnalysisSource) -> str:
    """Whether the maps can be trusted: the randomisation sanity check, deletion/insertion, attention maps."""
    results = source.results
    blocks = []
    sanity = results.sanity
    rows = [[h.esc(method), h.esc(model), _stat(entry.spearman), _stat(entry.pearson),
             _stat(entry.iou), _verdict(entry.passed)]
            for method, models in (sanity.methods if sanity else {}).items() for model, entry in models.items()]
    if sanity and rows:
        blocks.append(
            f"<h3>Randomisation sanity check ({sanity.n} images)</h3>"
            '<p class="note">Maps of each model against those of a copy with re-initialised weights. Faithful maps '
            "change, so low similarity is the expected result; passed means mean |Spearman| &lt; 0.5.</p>"
            + h.table([h.Column("method"), h.Column("model"), h.Column("Spearman", True), h.Column("Pearson", True),
                       h.Column("IoU", True), h.Column("result")], rows, "sanity"))
    faithfulness = results.faithfulness
    rows = [[h.esc(model), _stat(entry.get("deletion_auc")), _stat(entry.get("insertion_auc"))]
            for model, entry in (faithfulness.models if faithfulness else {}).items()]
    if faithfulness and rows:
        blocks.append(
            f"<h3>Deletion and insertion ({faithfulness.n} images, {faithfulness.steps} steps)</h3>"
            '<p class="note">Probability of the target class as the most salient pixels are removed (lower is '
            "better) or inserted into a blurred copy (higher is better), as area under the curve.</p>"
            + h.table([h.Column("model"), h.Column("deletion AUC", True), h.Column("insertion AUC", True)],
                      rows, "faithfulness"))
    rows = [[h.esc(model), h.numeric_cell(_count(entry.get("n")), 0), _stat(entry.get("pearson")),
             _stat(entry.get("peak_distance"))] for model, entry in results.attention.items()]
    if rows:
        blocks.append(
            "<h3>Own attention map against the CAM</h3>"
            + h.table([h.Column("model"), h.Column("images", True), h.Column("Pearson", True),
                       h.Column("peak distance (px)", True)], rows, "attention"))
    return "".join(blocks)


def _count(value: Stat | int | None) -> int | None:
    return value if isinstance(value, int) else None


def _figure(pngs: Mapping[str, bytes], name: str, alt: str) -> str:
    return h.image(pngs[name], alt) if name in pngs else ""


def diagnosis(source: AnalysisSource, pngs: Mapping[str, bytes]) -> str:
    """Per model: the written summary, recommendations, per-class accuracy, and the diagnosis figures."""
    blocks = []
    for model in source.model_names:
        d = source.results.diagnosis[model]
        summary = "".join(f"<li>{h.esc(line)}</li>" for line in d.summary)
        advice = "".join(f"<li>{h.esc(line)}</li>" for line in d.recommendations)
        columns = [h.Column("class"), h.Column("n", True), h.Column("accuracy", True), h.Column("pointing game", True)]
        rows = [[h.esc(c.name), h.numeric_cell(c.n, 0), h.numeric_cell(c.accuracy),
                 h.numeric_cell(c.pointing_game)] for c in d.per_class]
        pair_rows = [[h.esc(source.class_name(p.true)), h.esc(source.class_name(p.predicted)),
                      h.numeric_cell(p.count, 0), h.numeric_cell(p.rate), h.esc(p.related or "–")]
                     for p in d.confused_pairs]
        pair_columns = [h.Column("true"), h.Column("predicted"), h.Column("count", True), h.Column("rate", True),
                        h.Column("related by", help="shared superclass or name part")]
        pair_table = (h.table(pair_columns, pair_rows, f"pairs-{model}") if pair_rows
                      else '<p class="note">No confusions.</p>')
        blocks.append(
            f'<h3 id="diag-{h.esc(model)}">{h.esc(model)} — accuracy {h.numeric_cell(d.accuracy)}</h3>'
            + (f'<div class="summary"><ul>{summary}</ul></div>' if summary else "")
            + (f"<p><strong>Recommendations</strong></p><ul>{advice}</ul>" if advice else "")
            + _figure(pngs, f"worst_{model}.png", f"worst predictions of {model}")
            + f"<details><summary>Per-class accuracy ({len(rows)} classes)</summary>"
            + h.table(columns, rows, f"classes-{model}") + "</details>"
            + f"<details><summary>Most confused pairs and confusion matrix</summary>{pair_table}"
            + _figure(pngs, f"confused_pairs_{model}.png", f"confused pairs of {model}")
            + _figure(pngs, f"confused_examples_{model}.png", f"examples of the confused pairs of {model}")
            + _figure(pngs, f"confusion_{model}.png", f"confusion matrix of {model}") + "</details>"
        )
    return "".join(blocks)


FILE_NOTES = {
    "results.json": "everything the analysis computed (versioned schema)",
    "leaderboard.csv": "one row per student: bands, accuracy, agreement, every metric with its interval",
    "per_image.csv": "one row per image: label, each model's prediction and confidence, every pair metric",
    "per_class_accuracy.csv": "accuracy (and pointing game) per model and class",
    "confused_pairs.csv": "each model's most frequent true → predicted confusions",
}


def files_section(files: Sequence[str]) -> str:
    """Links to the data files beside report.html (relative: they travel with the folder)."""
    items = "".join(f'<li><a href="{h.esc(name)}">{h.esc(name)}</a> — {h.esc(FILE_NOTES[name])}</li>'
                    for name in files if name in FILE_NOTES)
    if any(name.startswith("figures/") for name in files):
        items += "<li>figures/ — every figure of this page as a PNG</li>"
    return f"<ul>{items}</ul>" if items else ""


def render(source: AnalysisSource, tasks: list[FigureTask], pngs: Mapping[str, bytes],
           files: Sequence[str] = ()) -> str:
    """The whole report.html as text, with figures from ``pngs`` and links to the other ``files``
    exported beside it (paths relative to the export folder)."""
    by_group: dict[str, list[FigureTask]] = {}
    for task in tasks:
        by_group.setdefault(task.group, []).append(task)

    def figures_of(group: str, css: str = "") -> str:
        images = "".join(_figure(pngs, t.filename, t.title) for t in by_group.get(group, []))
        return f'<div class="{css}">{images}</div>' if css else images

    sections = [
        h.section("Leaderboard", leaderboard(source), "leaderboard-section",
                  f"How alike each student's maps are to the teacher's ({source.teacher}), "
                  "means over images with 95% bootstrap intervals. Click a column to sort."),
        h.section("Models", models_table(source), "models-section", "Accuracy on the analysed images."),
        h.section("Metric charts", figures_of("metrics", "figures"), "metrics-section",
                  "Dashed lines are the band edges; error bars are 95% intervals."),
        h.section("CAM examples", figures_of("grids"), "grids-section",
                  "Each row: the original image, then the teacher's and each student's map; captions give the "
                  "predicted class and confidence, green when right and red when wrong."),
        h.section("By who was right", splits_table(source), "splits-section",
                  "Map similarity on images where both models, only one, or neither predicted the true class."),
        h.section("Per-class diagnosis", diagnosis(source, pngs), "diagnosis-section",
                  "Where each model fails, with the map for the true class beside the map for the class it chose."),
    ]
    nav = [("leaderboard-section", "Leaderboard"), ("models-section", "Models"), ("metrics-section", "Charts"),
           ("grids-section", "Examples"), ("splits-section", "Splits"), ("diagnosis-section", "Diagnosis")]
    trust = checks(source)
    if trust:
        sections.append(h.section("Can the maps be trusted?", trust, "checks-section"))
        nav.append(("checks-section", "Checks"))
    if "training" in by_group:
        sections.append(h.section("Training curves", figures_of("training"), "training-section"))
        nav.append(("training-section", "Training"))
    if files_section(files):
        sections.append(h.section("Data files", files_section(files), "files-section",
                                  "Beside this page in the export folder; numbers there are exact."))
        nav.append(("files-section", "Files"))
    title = f"kdcam report — {source.teacher} and {len(source.pairs)} students"
    subtitle = (f"Do the students look where the teacher looks? {source.results.cam.method} maps on "
                f"{source.n} images of {source.dataset.spec}.")
    return h.page(title, subtitle, source.facts(), nav, sections)
