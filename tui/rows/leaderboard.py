"""The leaderboard's rows: one per student of an analysis (and, split by who was right, one per
outcome under it), built from the typed ``results.json``; sorting and the cell texts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rich.text import Text

from engine.api.analyses import AnalysisInfo
from engine.api.bands import LOWER_IS_BETTER
from engine.api.bands import band as band_of
from engine.api.catalogue import BANDED_METRICS, METRIC_SHORT, OUTCOME_SPLITS
from engine.api.results import AnalysisResults, Stat
from tui.bands import band_text

# column title -> (key into Row.stats or a Row attribute, higher is better)
COLUMNS: dict[str, tuple[str, bool]] = {
    "student": ("student", True),
    "method": ("method", True),
    "acc %": ("accuracy", True),
    "Δacc": ("vs/accuracy", True),
    "agree%": ("agreement", True),
    "out KL": ("output_kl", False),
    **{METRIC_SHORT[m]: (m, m not in LOWER_IS_BETTER) for m in BANDED_METRICS},
    "ΔPear.": ("vs/pearson", True),
    "band": ("band_score", True),
}
DETAIL_KEYS = ("accuracy", "agreement", "output_kl", *BANDED_METRICS)
#: the differences from the baseline the detail line spells out (paired over images)
DIFFERENCE_KEYS = ("accuracy", *BANDED_METRICS, "pointing_game", "energy_in_mask", "energy_on_distractors",
                   "energy_on_cue", "follows_cue")


@dataclass
class Row:
    """One line of the board: a student (overall) or a student within one split."""

    student: str
    method: str
    split: str | None
    stats: dict[str, Stat] = field(default_factory=dict)  # key -> stat
    bands: dict[str, str] = field(default_factory=dict)
    band: str | None = None
    band_score: int | None = None
    n: int | None = None  # images in the split (split rows only)
    baseline: bool = False  # the independent reference the others are compared with

    def sort_value(self, key: str) -> Any:
        if key in ("student", "method"):
            return getattr(self, key) or ""
        if key == "band_score":
            return self.band_score if self.band_score is not None else -1
        stat = self.stats.get(key)
        return stat.mean if stat is not None else None


@dataclass(frozen=True)
class BoardView:
    """How the board is shown: split by outcome or not, and the sort (None: the analysis's order)."""

    split_by_outcome: bool = False
    sort_key: str | None = None
    descending: bool = True

    def sorted_by(self, title: str) -> BoardView:
        """Sort by a column; the same column again reverses the order."""
        key, higher_better = COLUMNS[title]
        if self.sort_key == key:
            return replace(self, descending=not self.descending)
        return replace(self, sort_key=key, descending=higher_better)

    def toggled_split(self) -> BoardView:
        return replace(self, split_by_outcome=not self.split_by_outcome)

    def rows(self, results: AnalysisResults) -> list[Row]:
        rows = rows_of(results, self.split_by_outcome)
        return sort_rows(rows, self.sort_key, self.descending) if self.sort_key is not None else rows


def rows_of(results: AnalysisResults, split_by_outcome: bool) -> list[Row]:
    """The board's rows (docs/RESULTS_SCHEMA.md), in the analysis's student order."""
    models = {m.name: m for m in results.models}
    rows = []
    for pair in results.pairs:
        method = pair.method or "—"
        stats = {"agreement": pair.agreement, "output_kl": pair.output_kl,
                 **{k: pair.metrics[k] for k in BANDED_METRICS if k in pair.metrics}}
        model = models.get(pair.student)
        if model is not None:
            stats["accuracy"] = model.accuracy
            stats.update({f"vs/{k}": v for k, v in (model.vs_baseline or {}).items()})
        stats.update({f"vs/{k}": v for k, v in (pair.vs_baseline or {}).items()})
        rows.append(Row(
            pair.student, method, None, stats=stats,
            bands={k: s.band for k, s in stats.items() if k in BANDED_METRICS and s.band is not None},
            band=pair.band, band_score=pair.band_score, baseline=pair.student == results.baseline,
        ))
        if not split_by_outcome:
            continue
        for split in OUTCOME_SPLITS:
            part = pair.splits.get(split)
            metrics = part.metrics if part is not None else {}
            split_stats = {k: metrics[k] for k in BANDED_METRICS if k in metrics}
            rows.append(Row(
                pair.student, method, split, stats=split_stats,
                bands={k: band_of(k, s.mean) for k, s in split_stats.items() if s.mean is not None},
                n=part.n if part is not None else 0,
            ))
    return rows


def sort_rows(rows: list[Row], key: str, descending: bool) -> list[Row]:
    """Sort students (a student's split rows stay under it); missing values go last."""
    heads = [r for r in rows if r.split is None]
    present = [r for r in heads if r.sort_value(key) is not None]
    missing = [r for r in heads if r.sort_value(key) is None]
    ordered = sorted(present, key=lambda r: r.sort_value(key), reverse=descending) + missing
    by_student: dict[str, list[Row]] = {}
    for r in rows:
        if r.split is not None:
            by_student.setdefault(r.student, []).append(r)
    return [r for head in ordered for r in (head, *by_student.get(head.student, []))]


def stat_text(stat: Stat | None, percent: bool = False, interval: bool = True) -> str:
    """'0.81±.02': the mean and the larger distance to an end of its 95% interval (or the mean alone)."""
    if stat is None or stat.mean is None:
        return "—"
    mean, low, high = stat.mean, stat.ci_low, stat.ci_high
    half = max(high - mean, mean - low) if interval and low is not None and high is not None else None
    if percent:  # the column title says "%"
        return f"{100 * mean:.1f}" + (f"±{100 * half:.1f}" if half else "")
    return f"{mean:.2f}" + (f"±{half:.2f}".replace("0.", ".", 1) if half else "")


#: fractions shown as percentages, the unit every view uses for them
PERCENT_KEYS = frozenset({"accuracy", "agreement"})


def interval_line(stat: Stat, percent: bool = False) -> str:
    if stat.mean is None:
        return "— (n=0)"
    scale, digits, unit = (100, 1, "%") if percent else (1, 3, "")
    if stat.ci_low is None or stat.ci_high is None:
        return f"{scale * stat.mean:.{digits}f}{unit} n={stat.n}"
    return (f"{scale * stat.mean:.{digits}f}{unit} [{scale * stat.ci_low:.{digits}f}, "
            f"{scale * stat.ci_high:.{digits}f}]{unit} n={stat.n}")


def difference_text(stat: Stat | None, percent: bool = False) -> str:
    """'+.03' / '+2.1': a paired difference from the baseline, with '*' where its interval excludes 0."""
    if stat is None or stat.mean is None:
        return ""
    mark = "*" if stat.ci_low is not None and stat.ci_high is not None and not stat.ci_low <= 0 <= stat.ci_high \
        else ""
    if percent:
        return f"{100 * stat.mean:+.1f}{mark}"
    return f"{stat.mean:+.2f}".replace("0.", ".", 1) + mark


def detail_text(row: Row) -> Text:
    """The line under the table: the highlighted row's numbers with their intervals, then its
    paired differences from the baseline."""
    text = Text(f"{row.student}" + (f" · {row.split.replace('_', ' ')}" if row.split else "") + ": ", style="bold")
    for key in DETAIL_KEYS:
        stat = row.stats.get(key)
        if stat is not None:
            text.append(f"{key} {interval_line(stat, key in PERCENT_KEYS)}   ", style="")
    if row.baseline:
        text.append("· the baseline: an independent model the others are compared with", style="italic")
    differences = [(key, row.stats[f"vs/{key}"]) for key in DIFFERENCE_KEYS if f"vs/{key}" in row.stats]
    if differences:
        text.append("\nminus the baseline (paired, 95%): ", style="bold")
        for key, stat in differences:
            text.append(f"{key} {interval_line(stat, key in PERCENT_KEYS)}   ", style="")
    return text


def analysis_bar(results: AnalysisResults) -> Text:
    """One line naming what was analysed: teacher (and its lead over the baseline), images, CAM settings.
    Text, not markup: the dataset spec and split are free text from results.json."""
    teacher, dataset, cam = results.teacher, results.dataset, results.cam
    layers = sorted(set(cam.layers.values()))
    gap = (teacher.vs_baseline or {}).get("accuracy")
    lead = ""
    if gap is not None and gap.mean is not None and gap.ci_low is not None and gap.ci_high is not None:
        lead = (f" ({100 * gap.mean:+.1f} [{100 * gap.ci_low:+.1f}, {100 * gap.ci_high:+.1f}] vs "
                f"baseline {results.baseline})")
    return Text.assemble("teacher ", (teacher.name, "bold"), f" acc % {stat_text(teacher.accuracy, True)}{lead} · ",
                         f"{dataset.spec} {dataset.split} n={dataset.n} · ",
                         f"CAM {cam.method} target {cam.target} layer {','.join(layers) or '?'}")


def describe(info: AnalysisInfo) -> str:
    """An analysis as a picker shows it."""
    return f"{info.id} · {info.method}/{info.target} · {info.teacher} vs {len(info.students)} · n={info.n}"


#: the student column's width up to 120 columns (the other columns take the rest of 120: band ends on the last)
NAME_WIDTH = 14
NAME_WIDTH_AT = 120


def name_width(terminal_width: int, names: Sequence[str]) -> int:
    """The student column's width: what a terminal wider than 120 columns adds, up to the longest name."""
    longest = max(map(len, names), default=0)
    return max(NAME_WIDTH, min(longest, NAME_WIDTH + terminal_width - NAME_WIDTH_AT))


def cells(row: Row, shown_name: str | None = None) -> list[Text | str]:
    """The row's cells; ``shown_name``: the student as the column has room for (whole by default)."""
    if row.split is None:
        name: Text | str = Text(shown_name or row.student, style="bold")  # in full below the table
    else:
        name = Text(f"  {row.split.replace('_', ' ')} (n={row.n})", style="dim")
    method = (row.method + "·base" if row.baseline else row.method) if row.split is None else ""
    return [
        name,
        method,
        stat_text(row.stats["accuracy"], percent=True) if "accuracy" in row.stats else "",
        difference_text(row.stats.get("vs/accuracy"), percent=True),
        # agreement and output KL as means: their intervals are in the detail line (room for the Δ columns)
        stat_text(row.stats["agreement"], percent=True, interval=False) if "agreement" in row.stats else "",
        stat_text(row.stats["output_kl"], interval=False) if "output_kl" in row.stats else "",
        *(band_text(stat_text(row.stats.get(k)), row.bands.get(k)) for k in BANDED_METRICS),
        difference_text(row.stats.get("vs/pearson")),
        band_text(row.band, row.band) if row.band else Text(""),
    ]
