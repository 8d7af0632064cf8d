"""Leaderboard: one row per student of an analysis, CAM-similarity means coloured by band,
with 95% intervals; sort by any column, split by who was right, switch analyses. The
baseline (an independent model, ``si`` by default) is marked, and Δ columns give each row's
paired difference from it (the detail line spells out every difference with its interval).

``o`` switches to the view over seeds when the open analysis belongs to a seed group
(``<study>-s<seed>``, engine.api.seedgroups): the engine aggregates the group as a job (never
on the UI thread) and the table shows each method's mean and 95% interval over seeds, its
paired difference from the baseline and "better in k/n seeds (j significantly)".

Analyses whose ``results.json`` cannot be read are listed under the board with the reason;
one that fails to open shows its error in place of the board."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import var
from textual.widgets import DataTable, Label, Select, Static

from engine.api.analyses import AnalysisInfo, UnreadableAnalysis, load_results, scan_analyses
from engine.api.catalogue import WHERE_TO_LOOK_METHODS
from engine.api.display import shorten_all
from engine.api.followup import where_to_look_spec
from engine.api.results import AnalysisResults, SeedAggregate
from engine.api.seedgroups import SeedGroup, find_seed_group
from engine.api.specs import AggregateSpec, AnalyzeSpec, DemoSpec
from engine.errors import KdcamError
from engine.events import Cancelled, Failed, Finished, JobEvent
from tui.bands import legend
from tui.commands import LeaderboardCommands
from tui.jobboard import JobRecord
from tui.rows import seeds as seed_rows
from tui.rows.leaderboard import COLUMNS, BoardView, Row, analysis_bar, cells, describe, detail_text, name_width
from tui.screens.base import KdcamScreen
from tui.widgets.problems import Problems

__all__ = ["LeaderboardScreen", "describe"]

#: jobs that write analyses: the list is re-read when one finishes
ANALYSIS_SPECS = (AnalyzeSpec, DemoSpec)


#: the header of the sorted column ends in one of these; the others keep the room (their widths stay put).
#: One cell each: twelve columns' room for a mark is what the board has to spare at 120 columns
SORT_MARKS = {True: "▼", False: "▲", None: " "}


def header_label(title: str, view: BoardView) -> str:
    """A column's header, marked ▼/▲ when the board is sorted by it (descending/ascending)."""
    sorted_here = view.sort_key is not None and COLUMNS[title][0] == view.sort_key
    return title + SORT_MARKS[view.descending if sorted_here else None]


class LeaderboardScreen(KdcamScreen):
    SCREEN_TITLE = "Leaderboard"
    AUTO_FOCUS = "#board"  # arriving (from Analyze, or by key) the arrow keys move on the board
    COMMANDS = KdcamScreen.COMMANDS | {LeaderboardCommands}
    BINDINGS = [
        Binding("s", "sort", "Sort by column"),
        Binding("w", "toggle_split", "Split by who was right"),
        Binding("a", "next_analysis", "Next analysis"),
        Binding("b", "browse", "Browse images"),
        Binding("e", "export", "Export analysis"),
        Binding("t", "train_where", "Train cat/xa"),
        Binding("o", "toggle_seeds", "Over seeds"),
        Binding("f5", "reload", "Reload"),
    ]

    #: split and sort of the board; changing it refills the table
    board_view: var[BoardView] = var(BoardView, init=False)
    #: the analysis shown (None: none yet, or the chosen one could not be read)
    results: var[AnalysisResults | None] = var(None, init=False, always_update=True)
    #: the view over seeds of the open analysis's seed group instead of the single analysis
    over_seeds: var[bool] = var(False, init=False)

    def __init__(self) -> None:
        super().__init__()
        self.analyses: list[AnalysisInfo] = []
        self.opened_id: str | None = None  # the analysis asked for last (shown, or failed to open)
        self._rows: list[Row] = []  # as shown, in table order
        self._name_width = 0  # the student column's width the rows were filled for
        self.unreadable: list[UnreadableAnalysis] = []
        self.seed_group: SeedGroup | None = None  # the open analysis's group, once looked for
        self._seed_job: JobRecord | None = None  # the aggregate job of ``_job_group``
        self._job_group: SeedGroup | None = None
        self._aggregate: tuple[SeedGroup, SeedAggregate] | None = None  # the last one computed

    def compose_body(self) -> ComposeResult:
        yield Select([], prompt="analysis", id="analysis", compact=True)
        yield Label("", id="analysis-bar")
        table: DataTable[str] = DataTable(id="board", cursor_type="cell", zebra_stripes=True, fixed_columns=1)
        for title in COLUMNS:
            table.add_column(header_label(title, BoardView()), key=title)
        yield table
        yield Static("", id="seed-heading")
        seeds: DataTable[str] = DataTable(id="seeds", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        yield seeds
        yield Static("", id="row-detail")
        yield Problems(id="analysis-problems")
        yield Static(legend().append("\nΔacc, ΔPear.: minus the baseline (·base), paired over images; * its 95% "
                                     "interval excludes 0", style="dim"), id="legend")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#seed-heading").display = False
        self.query_one("#seeds").display = False
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.query_one("#seeds" if self.over_seeds else "#board", DataTable).focus()
        if self.kdcam.selected_analysis and self.opened_id != self.kdcam.selected_analysis:
            self.action_reload()

    @work(thread=True, exclusive=True, group="list", exit_on_error=False)
    def action_reload(self) -> None:
        analyses, unreadable = scan_analyses(self.kdcam.workspace.root)
        self.app.call_from_thread(self._listed, analyses, unreadable)

    def _listed(self, analyses: list[AnalysisInfo], unreadable: list[UnreadableAnalysis]) -> None:
        self.analyses = analyses
        self.unreadable = unreadable
        self._aggregate = None  # an analysis of the group may have been rewritten
        self.query_one("#analysis-problems", Problems).show([(f"analysis {u.id}", u.reason) for u in unreadable])
        select: Select[str] = self.query_one("#analysis", Select)
        wanted = self.kdcam.selected_analysis
        if wanted not in {a.id for a in analyses}:
            wanted = analyses[0].id if analyses else None
        with self.prevent(Select.Changed):
            select.set_options([(describe(a), a.id) for a in analyses])
            if wanted:
                select.value = wanted
        if wanted:
            self.open_analysis(wanted)
        elif unreadable:
            self.show_failure(unreadable[0].id, unreadable[0].reason)
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
        current = self.opened_id
        next_id = ids[(ids.index(current) + 1) % len(ids)] if current in ids else ids[0]
        self.query_one("#analysis", Select).value = next_id

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def open_analysis(self, analysis_id: str) -> None:
        try:
            results = load_results(self.kdcam.workspace.root, analysis_id)
        except KdcamError as exc:
            self.app.call_from_thread(self.show_failure, analysis_id, str(exc))
            return
        self.app.call_from_thread(self._opened, analysis_id, results)

    def show_failure(self, analysis_id: str, reason: str) -> None:
        """The chosen analysis cannot be read: say why where the board would be; keys keep working."""
        self.opened_id = analysis_id
        self.seed_group = None
        self.results = None
        # the id may be a stranger's folder name and the reason quotes file contents: text, not markup
        self.query_one("#analysis-bar", Label).update(Text(f"analysis {analysis_id} is unreadable", style="red"))
        self.query_one("#row-detail", Static).update(Text(reason))

    def _opened(self, analysis_id: str, results: AnalysisResults) -> None:
        self.opened_id = analysis_id
        self.kdcam.selected_analysis = analysis_id
        self.seed_group = group = find_seed_group(analysis_id, self.analyses, self.unreadable)
        bar = analysis_bar(results)
        if group is not None and group.aggregable:
            bar.append(f" · one of {len(group.members)} seeds of {group.study} (o: over seeds)")
        self.query_one("#analysis-bar", Label).update(bar)
        self.results = results

    def watch_results(self) -> None:
        self.fill()

    def watch_board_view(self) -> None:
        self.fill()

    def fill(self) -> None:
        if self.over_seeds:
            self.show_seeds()
        table = self.query_one("#board", DataTable)
        cursor = table.cursor_coordinate
        table.clear()
        if self.results is None:
            self._rows = []
            return
        for title, column in table.columns.items():
            column.label = Text(header_label(str(title.value), self.board_view))
        rows = self.board_view.rows(self.results)
        students = [row.student for row in rows if row.split is None]
        self._name_width = name_width(self.app.size.width, students)
        shown = shorten_all(students, self._name_width)  # twins and long shared names stay apart
        for row in rows:
            table.add_row(*cells(row, shown.get(row.student)))
        self._rows = rows
        if table.row_count:
            table.cursor_coordinate = cursor if cursor.row < table.row_count else cursor._replace(row=0)
        self.show_detail()

    def on_resize(self) -> None:
        if not self.over_seeds:  # (the board is fitted again when the seeds view closes)
            self.fit_names()

    def fit_names(self) -> None:
        """Names get the room a wider terminal has (and lose it again)."""
        students = [row.student for row in self._rows if row.split is None]
        if students and name_width(self.app.size.width, students) != self._name_width:
            self.fill()

    def on_data_table_cell_highlighted(self) -> None:
        self.show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        if self.over_seeds:
            self.show_seed_detail()
            return
        table = self.query_one("#board", DataTable)
        rows = self._rows
        detail = self.query_one("#row-detail", Static)
        if not rows or table.cursor_row >= len(rows):
            if self.results is not None:
                detail.update("")
            return
        detail.update(detail_text(rows[table.cursor_row]))

    def action_sort(self) -> None:
        """Sort by the column under the cursor; again on the same column reverses the order."""
        if self.single_view_only("sorting"):
            return
        table = self.query_one("#board", DataTable)
        self.sort_by(list(COLUMNS)[table.cursor_column])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by that column (again: the other way)."""
        self.sort_by(str(event.column_key.value))

    def sort_by(self, title: str) -> None:
        table = self.query_one("#board", DataTable)
        table.move_cursor(column=list(COLUMNS).index(title))
        view = self.board_view.sorted_by(title)
        higher_better = COLUMNS[title][1]
        self.notify(f"sorted by {title}, {'best' if view.descending == higher_better else 'worst'} first",
                    timeout=2)
        self.board_view = view

    def action_export(self) -> None:
        """Export the analysis shown: the Export screen opens with it selected."""
        if self.opened_id is not None:
            self.kdcam.selected_analysis = self.opened_id
            self.kdcam.action_show("export")

    def open_by_id(self, analysis_id: str) -> None:
        self.query_one("#analysis", Select).value = analysis_id

    def action_toggle_split(self) -> None:
        if self.single_view_only("the split by who was right"):
            return
        self.board_view = self.board_view.toggled_split()

    def action_browse(self) -> None:
        if self.results is not None and self.opened_id is not None:
            self.kdcam.selected_analysis = self.opened_id
            self.kdcam.action_show("browser")

    def action_train_where(self) -> None:
        """Queue students of the highlighted row's architecture, distilled from this analysis's teacher
        with the methods that target where to look (cat, xa)."""
        table = self.query_one("#board", DataTable)
        if self.results is None or not self._rows or table.cursor_row >= len(self._rows):
            self.notify("highlight a student of an analysis first", severity="warning")
            return
        row = self._rows[table.cursor_row]
        try:
            spec = where_to_look_spec(self.results, row.student, str(self.kdcam.workspace.root))
        except KdcamError as exc:
            self.notify(str(exc), severity="error")
            return
        self.kdcam.submit(spec)
        self.notify(f"queued {', '.join(WHERE_TO_LOOK_METHODS)} students: {spec.student} from {spec.teacher} "
                    f"({spec.recipe} recipe); the Train screen shows them", title="train where to look")

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if record is not None and record is self._seed_job:
            self.seed_job_event(event)
        if isinstance(event, Finished) and record is not None and isinstance(record.spec, ANALYSIS_SPECS):
            self.action_reload()

    # -- over seeds ---------------------------------------------------------------------
    def single_view_only(self, what: str) -> bool:
        """True (and says so) when the view over seeds is shown: ``what`` acts on the single analysis."""
        if self.over_seeds:
            self.notify(f"{what} applies to the single analysis: o shows it again", timeout=3)
        return self.over_seeds

    def action_toggle_seeds(self) -> None:
        self.over_seeds = not self.over_seeds

    def watch_over_seeds(self, shown: bool) -> None:
        self.query_one("#board").display = not shown
        self.query_one("#seed-heading").display = shown
        self.query_one("#seeds").display = shown
        self.query_one("#seeds" if shown else "#board", DataTable).focus()
        if shown:
            self.show_seeds()
        else:
            self.fit_names()
            self.show_detail()

    def show_seeds(self) -> None:
        """The aggregate of the open analysis's seed group: shown when computed, else asked of the
        engine; a group of one, or an analysis in none, is said in words."""
        heading = self.query_one("#seed-heading", Static)
        table = self.query_one("#seeds", DataTable)
        if self.results is None or self.opened_id is None:
            table.clear(columns=True)
            heading.update("no readable analysis is open: nothing to aggregate over seeds")
            self.show_seed_detail()
            return
        group = self.seed_group
        if group is None or not group.aggregable:
            table.clear(columns=True)
            heading.update(seed_rows.single_message(self.opened_id, group))
            self.show_seed_detail()
            return
        if self._aggregate is not None and self._aggregate[0] == group:
            self.fill_seeds(group, self._aggregate[1])
            return
        table.clear(columns=True)
        self.query_one("#row-detail", Static).update("")
        if self._seed_job is not None and self._seed_job.active and self._job_group == group:
            return  # already being computed
        self._job_group = group
        self._seed_job = self.kdcam.submit(AggregateSpec(str(self.kdcam.workspace.root), group.members))
        heading.update(f"aggregating {len(group.members)} seeds of study {group.study} "
                       f"({', '.join(group.members)}) as an engine job; it waits for any job ahead of it")

    def fill_seeds(self, group: SeedGroup, aggregate: SeedAggregate) -> None:
        self.query_one("#seed-heading", Static).update(seed_rows.heading(aggregate, group))
        table = self.query_one("#seeds", DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        table.add_columns(*seed_rows.titles(aggregate))
        for row in aggregate.rows:
            table.add_row(*seed_rows.cells(row, aggregate))
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        self.show_seed_detail()

    def show_seed_detail(self) -> None:
        detail = self.query_one("#row-detail", Static)
        table = self.query_one("#seeds", DataTable)
        shown = self._aggregate if self._aggregate is not None and self._aggregate[0] == self.seed_group else None
        if shown is None or not table.row_count or table.cursor_row >= len(shown[1].rows):
            detail.update("")
            return
        detail.update(seed_rows.detail(shown[1].rows[table.cursor_row]))

    def seed_job_event(self, event: JobEvent) -> None:
        group = self._job_group
        if group is None:
            return
        if isinstance(event, Finished) and isinstance(event.result, SeedAggregate):
            self._aggregate = (group, event.result)
            if self.over_seeds and self.seed_group == group:
                self.fill_seeds(group, event.result)
        elif isinstance(event, (Failed, Cancelled)) and self.over_seeds and self.seed_group == group:
            why = event.error if isinstance(event, Failed) else event.message
            self.query_one("#seed-heading", Static).update(
                Text(f"the aggregate over seeds of study {group.study} failed: {why}", style="red"))
