"""Leaderboard: one row per student of an analysis, CAM-similarity means coloured by band,
with 95% intervals; sort by any column, split by who was right, switch analyses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, Select, Static

from engine.analysis.bands import band as band_of
from engine.analysis.results import AnalysisInfo, list_analyses, load_results
from engine.errors import KdcamError
from engine.events import Finished, JobEvent
from tui import format as fmt
from tui.bands import band_text, legend
from tui.jobboard import JobRecord
from tui.screens.base import KdcamScreen

BANDED_METRICS = ("pearson", "l2_similarity", "iou", "kl")
SPLITS = ("both_correct", "teacher_only", "student_only", "both_wrong")
# column title -> (key into Row.values, higher is better)
COLUMNS: dict[str, tuple[str, bool]] = {
    "student": ("student", True),
    "method": ("method", True),
    "acc %": ("accuracy", True),
    "agree %": ("agreement", True),
    "out KL": ("output_kl", False),
    "Pearson": ("pearson", True),
    "L2 sim": ("l2_similarity", True),
    "IoU": ("iou", True),
    "KL": ("kl", False),
    "band": ("band_score", True),
}


@dataclass
class Row:
    """One line of the board: a student (overall) or a student within one split."""

    student: str
    method: str
    split: str | None
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> stat
    bands: dict[str, str] = field(default_factory=dict)
    band: str | None = None
    band_score: int | None = None
    n: int | None = None  # images in the split (split rows only)

    def sort_value(self, key: str) -> Any:
        if key in ("student", "method"):
            return getattr(self, key) or ""
        if key == "band_score":
            return self.band_score if self.band_score is not None else -1
        mean = self.stats.get(key, {}).get("mean")
        return mean if mean is not None and not math.isnan(mean) else None


def rows_of(results: dict[str, Any], split_by_outcome: bool) -> list[Row]:
    """The board's rows, from ``results.json`` (docs/RESULTS_SCHEMA.md)."""
    accuracy = {m["name"]: m.get("accuracy", {}) for m in results.get("models", [])}
    rows = []
    for pair in results.get("pairs", []):
        student, method = pair["student"], pair.get("method") or "—"
        metrics = pair.get("metrics", {})
        overall = Row(
            student, method, None,
            stats={"accuracy": accuracy.get(student, {}), "agreement": pair.get("agreement", {}),
                   "output_kl": pair.get("output_kl", {}), **{k: metrics.get(k, {}) for k in BANDED_METRICS}},
            bands={k: metrics.get(k, {}).get("band") for k in BANDED_METRICS},
            band=pair.get("band"), band_score=pair.get("band_score"),
        )
        rows.append(overall)
        if not split_by_outcome:
            continue
        for split in SPLITS:
            part = pair.get("splits", {}).get(split, {})
            split_metrics = part.get("metrics", {})
            rows.append(Row(
                student, method, split,
                stats={k: split_metrics.get(k, {}) for k in BANDED_METRICS},
                bands={k: band_of(k, split_metrics.get(k, {}).get("mean")) for k in BANDED_METRICS
                       if split_metrics.get(k, {}).get("mean") is not None},
                n=part.get("n", 0),
            ))
    return rows


def stat_text(stat: dict[str, Any], percent: bool = False) -> str:
    """'0.81±.02': the mean and the larger distance to an end of its 95% interval."""
    mean = stat.get("mean")
    if mean is None:
        return "—"
    low, high = stat.get("ci_low"), stat.get("ci_high")
    half = max(high - mean, mean - low) if low is not None and high is not None else None
    if percent:  # the column title says "%"
        return f"{100 * mean:.1f}" + (f"±{100 * half:.1f}" if half else "")
    return f"{mean:.2f}" + (f"±{half:.2f}".replace("0.", ".", 1) if half else "")


def interval_line(stat: dict[str, Any]) -> str:
    if stat.get("mean") is None:
        return "— (n=0)"
    return f"{stat['mean']:.3f} [{stat['ci_low']:.3f}, {stat['ci_high']:.3f}] n={stat.get('n', '?')}"


class LeaderboardScreen(KdcamScreen):
    SCREEN_TITLE = "Leaderboard"
    BINDINGS = [
        Binding("s", "sort", "Sort by column"),
        Binding("w", "toggle_split", "Split by who was right"),
        Binding("a", "next_analysis", "Next analysis"),
        Binding("b", "browse", "Browse images"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.analyses: list[AnalysisInfo] = []
        self.results: dict[str, Any] | None = None
        self.split_by_outcome = False
        self.sort_key: str | None = None
        self.sort_descending = True
        self._rows: list[Row] = []  # as shown, in table order

    def compose_body(self) -> ComposeResult:
        yield Select([], prompt="analysis", id="analysis", compact=True)
        yield Label("", id="analysis-bar")
        table: DataTable = DataTable(id="board", cursor_type="cell", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="row-detail")
        yield Static(legend(), id="legend")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self.kdcam.selected_analysis and (self.results or {}).get("id") != self.kdcam.selected_analysis:
            self.action_reload()

    @work(thread=True, exclusive=True, group="list")
    def action_reload(self) -> None:
        analyses = list_analyses(self.kdcam.workspace)
        self.app.call_from_thread(self._listed, analyses)

    def _listed(self, analyses: list[AnalysisInfo]) -> None:
        self.analyses = analyses
        select = self.query_one("#analysis", Select)
        wanted = self.kdcam.selected_analysis
        if wanted not in {a.id for a in analyses}:
            wanted = analyses[0].id if analyses else None
        with self.prevent(Select.Changed):
            select.set_options([(describe(a), a.id) for a in analyses])
            if wanted:
                select.value = wanted
        if wanted:
            self.open_analysis(wanted)
        else:
            self.query_one("#analysis-bar", Label).update(
                "No analyses yet: the Analyze screen (3) makes one; `kdcam analyze` too.")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "analysis" and isinstance(event.value, str):
            self.open_analysis(event.value)

    def action_next_analysis(self) -> None:
        if not self.analyses:
            return
        ids = [a.id for a in self.analyses]
        current = (self.results or {}).get("id")
        next_id = ids[(ids.index(current) + 1) % len(ids)] if current in ids else ids[0]
        self.query_one("#analysis", Select).value = next_id

    @work(thread=True, exclusive=True, group="load")
    def open_analysis(self, analysis_id: str) -> None:
        try:
            results = load_results(self.kdcam.workspace, analysis_id)
        except KdcamError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._opened, results)

    def _opened(self, results: dict[str, Any]) -> None:
        self.results = results
        self.kdcam.selected_analysis = results.get("id")
        dataset, cam = results.get("dataset", {}), results.get("cam", {})
        teacher = next((m for m in results.get("models", []) if m.get("role") == "teacher"), {})
        layers = sorted(set(cam.get("layers", {}).values()))
        self.query_one("#analysis-bar", Label).update(
            f"teacher [b]{teacher.get('name', '?')}[/b] acc % {stat_text(teacher.get('accuracy', {}), True)} · "
            f"{dataset.get('spec', '?')} {dataset.get('split', '')} n={dataset.get('n', '?')} · "
            f"CAM {cam.get('method', '?')} target {cam.get('target', '?')} layer {','.join(layers) or '?'}")
        self.fill()

    def fill(self) -> None:
        table = self.query_one("#board", DataTable)
        cursor = table.cursor_coordinate
        table.clear()
        if self.results is None:
            return
        rows = rows_of(self.results, self.split_by_outcome)
        if self.sort_key is not None:
            rows = sort_rows(rows, self.sort_key, self.sort_descending)
        for row in rows:
            table.add_row(*cells(row))
        self._rows = rows
        if table.row_count:
            table.cursor_coordinate = cursor if cursor.row < table.row_count else cursor._replace(row=0)
        self.show_detail()

    def on_data_table_cell_highlighted(self) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        table = self.query_one("#board", DataTable)
        rows = self._rows
        detail = self.query_one("#row-detail", Static)
        if not rows or table.cursor_row >= len(rows):
            detail.update("")
            return
        row = rows[table.cursor_row]
        text = Text(f"{row.student}" + (f" · {row.split.replace('_', ' ')}" if row.split else "") + ": ",
                    style="bold")
        for key in ("accuracy", "agreement", "output_kl", *BANDED_METRICS):
            if row.stats.get(key):
                text.append(f"{key} {interval_line(row.stats[key])}   ", style="")
        detail.update(text)

    def action_sort(self) -> None:
        """Sort by the column under the cursor; again on the same column reverses the order."""
        table = self.query_one("#board", DataTable)
        title = list(COLUMNS)[table.cursor_column]
        key, higher_better = COLUMNS[title]
        if self.sort_key == key:
            self.sort_descending = not self.sort_descending
        else:
            self.sort_key, self.sort_descending = key, higher_better
        self.notify(f"sorted by {title}, {'best' if self.sort_descending == higher_better else 'worst'} first",
                    timeout=2)
        self.fill()

    def action_toggle_split(self) -> None:
        self.split_by_outcome = not self.split_by_outcome
        self.fill()

    def action_browse(self) -> None:
        if self.results is not None:
            self.kdcam.selected_analysis = self.results.get("id")
            self.kdcam.action_show("browser")

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if isinstance(event, Finished) and record is not None and record.kind in ("analyze", "demo"):
            self.action_reload()


def describe(info: AnalysisInfo) -> str:
    return f"{info.id} · {info.method}/{info.target} · {info.teacher} vs {len(info.students)} · n={info.n}"


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


def cells(row: Row) -> list[Text | str]:
    if row.split is None:
        name: Text | str = Text(fmt.clip(row.student, 18), style="bold")  # in full below the table
    else:
        name = Text(f"  {row.split.replace('_', ' ')} (n={row.n})", style="dim")
    return [
        name,
        row.method if row.split is None else "",
        stat_text(row.stats["accuracy"], percent=True) if "accuracy" in row.stats else "",
        stat_text(row.stats["agreement"], percent=True) if "agreement" in row.stats else "",
        stat_text(row.stats["output_kl"]) if "output_kl" in row.stats else "",
        *(band_text(stat_text(row.stats.get(k, {})), row.bands.get(k)) for k in BANDED_METRICS),
        band_text(row.band, row.band) if row.band else Text(""),
    ]
