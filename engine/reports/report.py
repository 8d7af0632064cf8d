"""report.html: the analysis as one self-contained page a person can put in front of a supervisor.

Sections: what was computed (header), the leaderboard coloured by band with interval bars,
metric charts, the CAM grids, the split by who was right, per-model diagnosis (written
summary, recommendations, per-class accuracy, worst predictions, confusion, confused pairs),
and training curves when the workspace has the runs. Figures arrive as PNG bytes and are
inlined; numbers are shown to 4 decimals with the exact value in ``data-value``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.api.bands import BANDS
from engine.api.catalogue import BANDED_METRICS, OUTCOME_LABELS, OUTCOME_SPLITS
from engine.api.display import shorten, shorten_all
from engine.api.results import PairEntry, Stat
from engine.reports import html as h
from engine.reports.bands import BANDS_BEST_FIRST, METRIC_LABELS, band_colour, band_tint
from engine.reports.gallery import FigureTask
from engine.reports.seeds import OverSeeds
from engine.reports.seeds import section as over_seeds_section
from engine.reports.source import AnalysisSource

#: model names longer than this are shortened from the middle (whole name on hover); the part that
#: tells a name from the analysis's other names is kept, so rows never look alike
NAME_WIDTH = 22


class Names:
    """Every model name of the analysis as the report shows it: one line, shortened against the others."""

    def __init__(self, names: Sequence[str]):
        self._short = shorten_all(list(names), NAME_WIDTH)

    def short(self, name: str) -> str:
        return self._short.get(name) or shorten(name, NAME_WIDTH)

    def cell(self, name: str) -> str:
        return h.name_cell(name, self.short(name))


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


def _stat(stat: Stat | int | None, band: str | None = None, scale: tuple[float, float] | None = None,
          as_percent: bool = False) -> str:
    if not isinstance(stat, Stat):  # a missing statistic (an int is a count, never a statistic)
        return h.numeric_cell(None)
    return h.numeric_cell(stat.mean, extra=_interval(stat, band, scale) if scale else "", as_percent=as_percent)


def _pct(stat: Stat | int | None, with_interval: bool = False) -> str:
    """Accuracy-like statistics (fractions) as percentages; ``with_interval`` adds the 95% interval below."""
    cell = _stat(stat, as_percent=True)
    if with_interval and isinstance(stat, Stat) and stat.ci_low is not None and stat.ci_high is not None:
        cell += (f'<span class="sub" title="95% interval">{100 * stat.ci_low:.1f}–'
                 f'{100 * stat.ci_high:.1f}%</span>')
    return cell


def band_explanation(pair: PairEntry) -> str:
    """Why a row has its overall band: the four metric scores, their mean and the rounding, and
    which metrics sit below the overall band (an Acceptable row may have a Problematic metric)."""
    scores = [(METRIC_LABELS[m], pair.band_scores.get(m, 0)) for m in BANDED_METRICS]
    mean = sum(score for _, score in scores) / len(scores)
    parts = ", ".join(f"{label} {BANDS[score]} ({score})" for label, score in scores)
    text = (f"overall {pair.band} = mean of the four metric scores ({parts}) = {mean:g}, "
            f"rounded half up to {pair.band_score}")
    below = [f"{label} is {BANDS[score]}" for label, score in scores if score < pair.band_score]
    return text + ("; " + ", ".join(below) if below else "")


def band_explanations(source: AnalysisSource, names: Names) -> str:
    items = "".join(f"<li>{names.cell(pair.student)}: {h.esc(band_explanation(pair))}</li>"
                    for pair in source.pairs)
    return f'<details class="bands" open><summary>How each overall band is decided</summary><ul>{items}</ul></details>'


def _scale(source: AnalysisSource, metric: str) -> tuple[float, float]:
    """One axis per leaderboard column so its bars compare: [0, 1] widened to every interval."""
    stats = [p.metrics[metric] for p in source.pairs]
    lows = [s.ci_low for s in stats if s.ci_low is not None]
    highs = [s.ci_high for s in stats if s.ci_high is not None]
    return min([0.0, *lows]), max([1.0, *highs])


def leaderboard(source: AnalysisSource) -> str:
    names = Names(source.model_names)
    scales = {metric: _scale(source, metric) for metric in BANDED_METRICS}
    columns = [h.Column("student"), h.Column("method"), h.Column("band"),
               h.Column("accuracy", True), h.Column("agreement", True, "top-1 agreement with the teacher")]
    columns += [h.Column(METRIC_LABELS[m], True, "mean with 95% bootstrap interval") for m in BANDED_METRICS]
    columns += [h.Column("output KL", True, "KL(softmax(teacher) ‖ softmax(student))"), h.Column("valid maps", True)]
    rows, attrs = [], []
    for pair in source.pairs:
        student = source.model_entry(pair.student)
        method = (pair.method or "–") + (" (baseline)" if pair.student == source.results.baseline else "")
        cells = [names.cell(pair.student), h.esc(method),
                 _band(pair.band).replace('class="band"', f'class="band" title="{h.esc(band_explanation(pair))}"'),
                 _pct(student.accuracy), _pct(pair.agreement)]
        for metric in BANDED_METRICS:
            entry = pair.metrics[metric]
            cells.append(_stat(entry, entry.band, scales[metric]))
        cells += [_stat(pair.output_kl), h.numeric_cell(pair.n_valid, 0)]
        rows.append(cells)
        attrs.append(f'data-student="{h.esc(pair.student)}" style="background:{band_tint(pair.band)}"')
    return _legend() + h.table(columns, rows, "leaderboard", attrs) + band_explanations(source, names)


def models_table(source: AnalysisSource) -> str:
    names = Names(source.model_names)
    columns = [h.Column("model"), h.Column("role"), h.Column("architecture"), h.Column("CAM layer"),
               h.Column("params", True, "parameters"), h.Column("accuracy", True, "on the analysed images, with its 95% interval"),
               h.Column("checkpoint accuracy", True, "as measured when the checkpoint was saved"),
               h.Column("mean confidence", True), h.Column("degenerate maps", True)]
    has_mask = any(m.mask is not None for m in source.models)
    if has_mask:
        columns += [h.Column("pointing game", True), h.Column("energy in mask", True)]
    regions = [name for name in REGIONS if any(m.mask is not None and getattr(m.mask, name) is not None
                                               for m in source.models)]
    columns += [h.Column(REGIONS[name], True, "share of the model's own map there") for name in regions]
    follows = any(m.follows_cue is not None for m in source.models)
    if follows:
        columns.append(h.Column("follows cue", True, "share of predictions equal to the class the cue names"))
    rows = []
    for model in source.models:
        layer = model.tap or source.results.cam.layers.get(model.name, "–")
        row = [names.cell(model.name), h.esc(model.role), h.esc(f"{model.arch} ×{model.width}"),
               h.esc(layer), h.numeric_cell(model.params, 0), _pct(model.accuracy, with_interval=True),
               h.numeric_cell(model.checkpoint_accuracy, as_percent=True),
               h.numeric_cell(model.mean_confidence, as_percent=True), h.numeric_cell(model.degenerate, 0)]
        mask = model.mask
        if has_mask:
            row += [_pct(mask.pointing_game if mask else None), _stat(mask.energy_in_mask if mask else None)]
        row += [_stat(getattr(mask, name) if mask else None) for name in regions]
        if follows:
            row.append(_pct(model.follows_cue))
        rows.append(row)
    return h.table(columns, rows, "models")


#: where else a map can lie, on datasets that mark it (shapes v2 and later)
REGIONS = {"energy_on_distractors": "energy on distractors", "energy_on_cue": "energy on the cue"}
#: the differences from the baseline the report shows, in order, with their labels
DIFFERENCES = {"accuracy": "accuracy", **{m: METRIC_LABELS[m] for m in BANDED_METRICS},
               "pointing_game": "pointing game", "energy_in_mask": "energy in mask", **REGIONS,
               "follows_cue": "follows the cue"}
LOWER_IS_BETTER = frozenset({"kl", "energy_on_distractors", "energy_on_cue", "follows_cue"})


def _difference(stat: Stat | None, name: str) -> str:
    """A paired difference and its 95% interval, marked where the interval excludes zero."""
    if stat is None or stat.mean is None:
        return h.numeric_cell(None)
    interval = ""
    if stat.ci_low is not None and stat.ci_high is not None:
        interval = f' <span class="nowrap note">[{stat.ci_low:+.4f}, {stat.ci_high:+.4f}]</span>'
        if not stat.ci_low <= 0 <= stat.ci_high:
            better = (stat.ci_low > 0) != (name in LOWER_IS_BETTER)
            interval += f' <strong>{"better" if better else "worse"}</strong>'
    return h.numeric_cell(stat.mean) + interval


def baseline_table(source: AnalysisSource) -> str:
    """Each model minus the independent baseline, paired over images: what meeting the teacher changed."""
    results = source.results
    if results.baseline is None:
        return ('<p class="note">This analysis has no independent baseline (no <code>si</code> student and no '
                "<code>--baseline</code>), so its similarities have no reference.</p>")
    rows_by_model = [("teacher " + results.teacher.name, dict(results.teacher.vs_baseline or {}))]
    for pair in results.pairs:
        if pair.student != results.baseline:
            model = source.model_entry(pair.student)
            rows_by_model.append((f"{pair.method or '–'} {pair.student}",
                                  {**(model.vs_baseline or {}), **(pair.vs_baseline or {})}))
    names = [n for n in DIFFERENCES if any(n in diffs for _, diffs in rows_by_model)]
    columns = [h.Column("model")] + [h.Column(f"Δ {DIFFERENCES[n]}", True, "mean paired difference, 95% interval")
                                     for n in names]
    rows = [[h.esc(label)] + [_difference(diffs.get(n), n) for n in names] for label, diffs in rows_by_model]
    reference = results.baseline_pair
    lead = ""
    if reference is not None:
        pearson = reference.metrics["pearson"]
        lead = (f'<p class="note">The baseline <code>{h.esc(results.baseline)}</code> never met the teacher; its own '
                f"maps reach Pearson {h.numeric_cell(pearson.mean)} with the teacher's. Similarity differences are "
                "student − baseline (how much closer to the teacher a student looks than an independent model); "
                "accuracy and localisation differences are model − baseline. Bands colour absolute values only."
                "</p>")
    return lead + h.table(columns, rows, "baseline")


def splits_table(source: AnalysisSource) -> str:
    names = Names(source.model_names)
    columns = [h.Column("student"), h.Column("split")]
    columns += [h.Column("n", True)] + [h.Column(METRIC_LABELS[m], True) for m in BANDED_METRICS]
    rows = []
    for pair in source.pairs:
        for key in OUTCOME_SPLITS:
            split = pair.splits.get(key)
            rows.append([names.cell(pair.student), h.esc(OUTCOME_LABELS[key]), h.numeric_cell(split.n if split else None, 0)]
                        + [_stat(split.metrics.get(m) if split else None) for m in BANDED_METRICS])
    return h.table(columns, rows, "splits")


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "–"  # no image had valid maps
    return "passed" if passed else "<strong>failed</strong>: the maps barely depend on the weights"


def checks(source: AnalysisSource) -> str:
    """Whether the maps can be trusted: the randomisation sanity check, deletion/insertion, attention maps."""
    results = source.results
    names = Names(source.model_names)
    blocks = []
    sanity = results.sanity
    rows = [[h.esc(method), names.cell(model), _stat(entry.spearman), _stat(entry.pearson),
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
    rows = [[names.cell(model), _stat(entry.get("deletion_auc")), _stat(entry.get("insertion_auc"))]
            for model, entry in (faithfulness.models if faithfulness else {}).items()]
    if faithfulness and rows:
        blocks.append(
            f"<h3>Deletion and insertion ({faithfulness.n} images, {faithfulness.steps} steps)</h3>"
            '<p class="note">Probability of the target class as the most salient pixels are removed (lower is '
            "better) or inserted into a blurred copy (higher is better), as area under the curve.</p>"
            + h.table([h.Column("model"), h.Column("deletion AUC", True), h.Column("insertion AUC", True)],
                      rows, "faithfulness"))
    rows = [[names.cell(model), h.numeric_cell(_count(entry.get("n")), 0), _stat(entry.get("pearson")),
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


def against_teacher(source: AnalysisSource, model: str) -> list[str]:
    """A student's own findings beside the teacher's: the accuracy gap in points, how often it agrees
    with the teacher, and the classes where it loses most to the teacher (none for the teacher)."""
    if model == source.teacher or source.teacher not in source.results.diagnosis:
        return []
    mine, theirs = source.results.diagnosis[model], source.results.diagnosis[source.teacher]
    if mine.accuracy is None or theirs.accuracy is None:
        return []
    pair = next((p for p in source.pairs if p.student == model), None)
    agree = (f", agrees with it on {h.percent(pair.agreement.mean)} of images"
             if pair and pair.agreement.mean is not None else "")
    lines = [f"Against the teacher: accuracy {100 * (mine.accuracy - theirs.accuracy):+.1f} points "
             f"({h.percent(mine.accuracy)} vs {h.percent(theirs.accuracy)}){agree}."]
    teacher_by_class = {c.cls: c.accuracy for c in theirs.per_class if c.accuracy is not None}
    drops = sorted(((teacher_by_class[c.cls] - c.accuracy, c.name) for c in mine.per_class
                    if c.accuracy is not None and c.cls in teacher_by_class), reverse=True)
    lost = [f"{name} (−{100 * drop:.0f} points)" for drop, name in drops[:3] if drop > 0]
    if lost:
        lines.append("Loses most to the teacher on: " + ", ".join(lost) + ".")
    return lines


def diagnosis(source: AnalysisSource, pngs: Mapping[str, bytes]) -> str:
    """Per model: its own written summary (and, for a student, how it compares with the teacher),
    recommendations, per-class accuracy, and the diagnosis figures."""
    names = Names(source.model_names)
    blocks = []
    for model in source.model_names:
        d = source.results.diagnosis[model]
        summary = "".join(f"<li>{h.esc(line)}</li>" for line in [*d.summary, *against_teacher(source, model)])
        advice = "".join(f"<li>{h.esc(line)}</li>" for line in d.recommendations)
        columns = [h.Column("class"), h.Column("n", True), h.Column("accuracy", True), h.Column("pointing game", True)]
        rows = [[h.esc(c.name), h.numeric_cell(c.n, 0), h.numeric_cell(c.accuracy, as_percent=True),
                 h.numeric_cell(c.pointing_game, as_percent=True)] for c in d.per_class]
        pair_rows = [[h.esc(source.class_name(p.true)), h.esc(source.class_name(p.predicted)),
                      h.numeric_cell(p.count, 0), h.numeric_cell(p.rate, as_percent=True), h.esc(p.related or "–")]
                     for p in d.confused_pairs]
        pair_columns = [h.Column("true"), h.Column("predicted"), h.Column("count", True), h.Column("rate", True),
                        h.Column("related by", help="shared superclass or name part")]
        pair_table = (h.table(pair_columns, pair_rows, f"pairs-{model}") if pair_rows
                      else '<p class="note">No confusions.</p>')
        blocks.append(
            f'<h3 id="diag-{h.esc(model)}">{names.cell(model)} — accuracy '
            f'{h.numeric_cell(d.accuracy, as_percent=True)}</h3>'
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
    "over_seeds.csv": "per method over the seed group: each number's mean, 95% t interval and value per seed",
}


def files_section(files: Sequence[str]) -> str:
    """Links to the data files beside report.html (relative: they travel with the folder)."""
    items = "".join(f'<li><a href="{h.esc(name)}">{h.esc(name)}</a> — {h.esc(FILE_NOTES[name])}</li>'
                    for name in files if name in FILE_NOTES)
    if any(name.startswith("figures/") for name in files):
        items += "<li>figures/ — every figure of this page as a PNG</li>"
    return f"<ul>{items}</ul>" if items else ""


def render(source: AnalysisSource, tasks: list[FigureTask], pngs: Mapping[str, bytes],
           files: Sequence[str] = (), over_seeds: OverSeeds | None = None) -> str:
    """The whole report.html as text, with figures from ``pngs``, links to the other ``files``
    exported beside it (paths relative to the export folder) and, when the analysis is one of a
    seed group, the group summarised per method."""
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
        h.section("Against the baseline", baseline_table(source), "baseline-section",
                  "Every model compared with an independent one, paired over the same images (95% paired bootstrap "
                  "intervals)."),
        h.section("Models", models_table(source), "models-section",
                  "Accuracy on the analysed images, and where each model's own map lies."),
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
    nav = [("leaderboard-section", "Leaderboard"), ("baseline-section", "Baseline"), ("models-section", "Models"),
           ("metrics-section", "Charts"),
           ("grids-section", "Examples"), ("splits-section", "Splits"), ("diagnosis-section", "Diagnosis")]
    if over_seeds is not None:
        sections.insert(2, h.section("Over seeds", over_seeds_section(over_seeds), "seeds-section",
                                     "The analyses of this study, one per training seed, summarised per method: "
                                     "what holds for the method rather than for one run."))
        nav.insert(2, ("seeds-section", "Over seeds"))
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
