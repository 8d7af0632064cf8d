"""What ``kdcam analyze``, ``aggregate``, ``analyses inspect`` and the demo print: an analysis and a
seed group as Rich tables with one line per model at any width.

Accuracy and the share following a cue read as percentages and their differences as points, as in
every other view; model names are shortened against each other to the room the numbers leave,
never folded over several lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape

from engine.api.bands import band_style
from engine.api.catalogue import BANDED_METRICS, SANITY_PASS_BELOW
from engine.api.display import shorten_all
from engine.api.results import LOWER_IS_BETTER_ACROSS, AnalysisResults, SanityEntry, SeedAggregate, SeedStat, Stat

#: shares of images: shown ×100 (percent), their differences in points
PERCENT = frozenset({"accuracy", "follows_cue"})
#: short column titles of per-model and per-pair numbers
SHORT = {"accuracy": "acc %", "pearson": "Pearson", "l2_similarity": "L2 sim", "iou": "IoU", "kl": "KL",
         "agreement": "agree", "output_kl": "out KL", "pointing_game": "pointing", "energy_in_mask": "in mask",
         "energy_on_distractors": "on distr.", "energy_on_cue": "on cue", "follows_cue": "cue %"}
#: what the summaries show per model, over seeds and as differences from the baseline: accuracy, the
#: banded similarities, ground-truth localisation
QUANTITIES = ("accuracy", *BANDED_METRICS, "pointing_game", "energy_in_mask", "energy_on_distractors",
                      "energy_on_cue", "follows_cue")
#: the narrowest a shortened model name gets, whatever the terminal
MIN_NAME = 8
#: follows the baseline's name where no column says which row it is (as on the TUI's leaderboard)
BASELINE_MARK = "·base"
#: where names break into tokens
SEPARATORS = "-_."
#: terminals at least this wide show mean±half-width; narrower ones the mean alone
WIDE = 110


def summary_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                  marks: Mapping[str, str] | None = None) -> Any:
    """A table of ``rows`` (Rich markup in every cell but the first) on one line each: the first
    column's names shortened against each other to what the other columns leave of ``width``;
    ``marks`` (name -> e.g. "·base") follow a name whole."""
    from rich.table import Table
    from rich.text import Text

    marks = marks or {}
    numbers = sum(max([len(header), *(Text.from_markup(row[i]).cell_len for row in rows)])
                  for i, header in enumerate(headers) if i)
    mark = max((len(mark) for mark in marks.values()), default=0)
    room = max(MIN_NAME, len(headers[0]) - mark, width - numbers - (3 * len(headers) + 1) - mark)  # 3: pad, rule
    names = [row[0] for row in rows]
    short = shorten_all(names, room) if any(len(name) > room for name in names) else {n: n for n in names}
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(escape(short[row[0]] + marks.get(row[0], "")), *row[1:])
    return table


def fmt(stat: Stat | SeedStat | None, name: str = "", interval: bool = True, digits: int = 2,
        sign: bool = False) -> str:
    """mean±half-width of the 95% interval (or the mean alone where columns are scarce); shares
    of images in percent (points for a difference, ``sign``) with one decimal."""
    if stat is None or stat.mean is None:
        return "–"
    scale, digits = (100, 1) if name in PERCENT else (1, digits)
    text = f"{scale * stat.mean:{'+' if sign else ''}.{digits}f}"
    if interval and stat.ci_low is not None and stat.ci_high is not None:
        text += f"±{scale * (stat.ci_high - stat.ci_low) / 2:.{digits}f}"
    return text


def signed(stat: Stat | SeedStat | None, name: str, interval: bool) -> str:
    """A difference: with its sign, three decimals (points for shares of images)."""
    return fmt(stat, name, interval, digits=3, sign=True)


def difference(stat: Stat | None, name: str, interval: bool) -> str:
    """A paired difference; ``*`` and green/red where its interval excludes zero on the better/worse
    side (the exact bounds are in the report)."""
    text = signed(stat, name, interval)
    if stat is None or stat.ci_low is None or stat.ci_high is None or stat.ci_low <= 0 <= stat.ci_high:
        return text
    better = (stat.ci_low > 0) != (name in LOWER_IS_BETTER_ACROSS)
    return f"[{'green' if better else 'red'}]{text}*[/]"


def fit(names: list[str], width: int, cell: int, fixed: int = 14) -> list[str]:
    """The first of ``names`` that fit a terminal ``width`` at ``cell`` characters each (the rest are
    in ``--json`` and the report)."""
    return names[:max(1, (width - fixed) // cell)]


def heading(results: AnalysisResults) -> str:
    """Which analysis the tables below are (the demo prints two that differ only in the layer)."""
    layers = sorted(set(results.cam.layers.values()))
    layer = layers[0] if len(layers) == 1 else "each model's own layer"
    data = results.dataset
    return (f"[bold]analysis {escape(results.id)}[/]: " +
            escape(f"{results.cam.method} at {layer}, target {results.cam.target}, {data.n} {data.split} images of "
                   f"{data.spec}"))


def print_analysis(results: AnalysisResults, path: str) -> None:
    """Models (accuracy, ground-truth localisation), students against the teacher (bands), and each
    model's difference from the baseline."""
    from engine.cli.output import console

    out = console()
    wide = out.width >= WIDE
    out.print(heading(results), highlight=False)
    regions = [name for name in ("energy_on_distractors", "energy_on_cue")
               if any(m.mask is not None and getattr(m.mask, name) is not None for m in results.models)]
    follows = any(m.follows_cue is not None for m in results.models)
    rows = []
    for model in results.models:
        mask = model.mask
        role = "baseline" if model.name == results.baseline else model.role
        rows.append([model.name, role, fmt(model.accuracy, "accuracy", wide),
                     fmt(mask.pointing_game if mask else None, interval=wide),
                     fmt(mask.energy_in_mask if mask else None, interval=wide),
                     *(fmt(getattr(mask, r) if mask else None, interval=wide) for r in regions),
                     *((fmt(model.follows_cue, "follows_cue", wide),) if follows else ()), str(model.degenerate)])
    headers = ("model", "role", SHORT["accuracy"], "pointing", "in mask", *(SHORT[r] for r in regions),
               *((SHORT["follows_cue"],) if follows else ()), "degen.")
    out.print(summary_table("models: accuracy, where each model's own map lies (ground truth), degenerate "
                            "(constant) maps", headers, rows, out.width))
    teacher_gap = (results.teacher.vs_baseline or {}).get("accuracy")
    if results.baseline is not None and teacher_gap is not None and teacher_gap.mean is not None:
        bounds = f" [{100 * teacher_gap.ci_low:+.1f}, {100 * teacher_gap.ci_high:+.1f}]" \
            if teacher_gap.ci_low is not None and teacher_gap.ci_high is not None else ""
        out.print(f"teacher − baseline ({escape(results.baseline)}) accuracy: {100 * teacher_gap.mean:+.1f} points{bounds} "
                  f"(paired over {teacher_gap.n} images, 95% bootstrap interval)", highlight=False)
    if results.pairs:
        _print_pairs(results, wide)
        _print_differences(results, wide)
    for method, entries in (results.sanity.methods if results.sanity else {}).items():
        out.print(sanity_line(method, entries), highlight=False)
    out.print(f"[green]analysis written to[/] {escape(path)}", highlight=False)


def student_labels(results: AnalysisResults) -> dict[str, str]:
    """Each student by its method; where several share one (a ``-last`` twin, runs of other seeds),
    the method and the end of the name where they differ (``kd``, ``kd-last``); a model without a
    method by its name."""
    import os.path

    by_method: dict[str, list[str]] = {}
    for pair in results.pairs:
        if pair.method:
            by_method.setdefault(pair.method, []).append(pair.student)
    labels = {pair.student: pair.student for pair in results.pairs}
    for method, students in by_method.items():
        common = os.path.commonprefix(students)
        if any(len(s) > len(common) and s[len(common)] not in SEPARATORS for s in students):
            # the names differ inside a token ("-s0" vs "-s1"): the label keeps the whole token
            cut = max(common.rfind(c) for c in SEPARATORS)
            if cut < 0:  # no token in common: the names themselves
                continue
            common = common[:cut]
        for student in students:
            labels[student] = method + student[len(common):] if len(students) > 1 else method
    return labels


def sanity_line(method: str, entries: Mapping[str, SanityEntry]) -> str:
    """The randomisation check in one sentence: how many models passed, the range of Spearman
    similarities to their randomised copies' maps, and each model that failed or was not checked."""
    passed = sum(e.passed is True for e in entries.values())
    spearman = [e.spearman.mean for e in entries.values() if e.spearman.mean is not None]
    text = f"randomisation check ({escape(method)}): {passed} of {len(entries)} models passed"
    if spearman:
        text += (f" (Spearman to the maps of a randomised copy {min(spearman):.2f} to {max(spearman):.2f}; "
                 f"pass: under {SANITY_PASS_BELOW})")
    for name, entry in entries.items():
        if entry.passed is not True:
            verdict = "FAILED" if entry.passed is False else "not checked"
            text += f"; {verdict}: {escape(name)} (Spearman {fmt(entry.spearman)})"
    return text


def _print_pairs(results: AnalysisResults, wide: bool) -> None:
    """Each student against the teacher: the banded similarities, agreement and output KL."""
    from engine.cli.output import console

    rows, marks, labels = [], {}, student_labels(results)
    for pair in results.pairs:
        label = labels[pair.student]
        if pair.student == results.baseline:
            marks[label] = BASELINE_MARK
        cells = [f"[{band_style(pair.metrics[n].band)}]{fmt(pair.metrics[n], interval=wide)}[/]"
                 for n in BANDED_METRICS]
        rows.append([label, f"[{band_style(pair.band)}]{pair.band}[/]", *cells, fmt(pair.agreement, interval=wide),
                     fmt(pair.output_kl, interval=wide)])
    title = escape(f"students vs teacher ({results.cam.method}, target {results.cam.target}; ·base: the baseline)")
    if not wide:
        title += " · means; 95% intervals in the report and the TUI"
    headers = ("student", "band", *(SHORT[n] for n in BANDED_METRICS), "agree", "out KL")
    console().print(summary_table(title, headers, rows, console().width, marks))


def _print_differences(results: AnalysisResults, wide: bool) -> None:
    """Each model minus the baseline, paired over images: what a student gained from its teacher."""
    from engine.cli.output import console

    if results.baseline is None:
        console().print("no baseline (no si student and no --baseline): similarities have no reference to compare "
                        "with", highlight=False)
        return
    labels = student_labels(results)
    diffs = [(labels[p.student], {**(results.model(p.student).vs_baseline or {}), **(p.vs_baseline or {})})
             for p in results.pairs if p.student != results.baseline]
    diffs.insert(0, ("teacher", dict(results.teacher.vs_baseline or {})))
    columns = [c for c in QUANTITIES if any(c in d for _, d in diffs)]
    width = console().width
    wide = wide and width >= 12 + 16 * len(columns)  # ±half-widths only where they fit
    columns = fit(columns, width, 16 if wide else 11)
    title = (f"minus the baseline {escape(results.baseline)}: mean paired difference"
             + (" ± 95% bootstrap half-width" if wide else " (intervals in the report, the TUI and --json)")
             + "; accuracy in points; * (green/red): its 95% interval excludes 0, better/worse")
    rows = [[label, *(difference(d.get(c), c, wide) for c in columns)] for label, d in diffs]
    headers = ("model", *(f"Δ {SHORT[c].removesuffix(' %')}" for c in columns))
    console().print(summary_table(title, headers, rows, width))


def print_aggregate(aggregated: SeedAggregate) -> None:
    """Per method over seeds: means with 95% t intervals, then the paired differences from the baseline."""
    from engine.cli.output import console

    out = console()
    wide = out.width >= WIDE
    seeds = len(aggregated.analyses)
    names = [n for n in QUANTITIES if any(n in r.metrics for r in aggregated.rows)]
    names = fit(names, out.width, 12 if wide else 10, fixed=20)
    marks = {row.method: BASELINE_MARK for row in aggregated.rows if row.role == "baseline"}
    rows = [[row.method, str(max((s.n for s in row.metrics.values()), default=0)),
             *(fmt(row.metrics.get(name), name, wide) for name in names)] for row in aggregated.rows]
    out.print(summary_table(f"over {seeds} seeds ({escape(aggregated.dataset)}, {escape(aggregated.cam)}): mean ± 95% t half-width "
                            "over seeds; ·base: the baseline", ("method", "n", *(SHORT[n] for n in names)), rows, out.width, marks))
    if aggregated.baseline is None:
        out.print("no baseline in these analyses: no differences to report", highlight=False)
        return
    diffs = [n for n in ("accuracy", "pearson", "iou", "pointing_game", "energy_in_mask", "energy_on_distractors",
                         "energy_on_cue", "follows_cue") if any(n in r.vs_baseline for r in aggregated.rows)]
    diffs = fit(diffs, out.width, 22 if wide else 12)
    rows = []
    for row in aggregated.rows:
        if row.role == "baseline":
            continue
        cells = []
        for name in diffs:
            d = row.vs_baseline.get(name)
            cells.append("–" if d is None else
                         f"{signed(d.stat, name, wide)} {d.better}/{d.stat.n}" + (f" ({d.significant})" if wide else ""))
        rows.append([row.method, *cells])
    out.print(summary_table(f"minus {escape(aggregated.baseline)}, over seeds: mean paired difference ± 95% t half-width "
                            "(accuracy in points) · better in k/n seeds (j: significantly, in that seed's own "
                            "analysis)", ("method", *(f"Δ {SHORT[n].removesuffix(' %')}" for n in diffs)), rows,
                            out.width))
