"""Export: turn an analysis into a report folder (HTML, PNG, CSV, JSON) and show where it went."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, SelectionList, Static

from engine.api.analyses import AnalysisInfo, UnreadableAnalysis, scan_analyses
from engine.api.catalogue import EXPORT_FORMATS
from engine.api.exports import list_exports
from engine.api.results import ExportResult
from engine.api.specs import AnalyzeSpec, DemoSpec, ExportSpec
from engine.events import Finished, JobEvent
from tui.jobboard import JobRecord
from tui.rows.leaderboard import describe
from tui.screens.base import KdcamScreen
from tui.widgets.checklist import CheckList, MarkedCheckbox
from tui.widgets.jobstatus import JobStatus
from tui.widgets.problems import Problems

#: jobs that write analyses: the list is re-read when one finishes
ANALYSIS_SPECS = (AnalyzeSpec, DemoSpec)


def output_path(result: object, fallback: Path) -> Path:
    """Where an export job wrote its report."""
    return Path(result.path) if isinstance(result, ExportResult) else fallback


class ExportScreen(KdcamScreen):
    SCREEN_TITLE = "Export"
    AUTO_FOCUS = None  # keys drive the screen; tab walks into the form
    BINDINGS = [Binding("e", "export", "Export"), Binding("x", "cancel", "Cancel"), Binding("f5", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self.job: JobRecord | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with VerticalScroll(classes="form"):
                yield Label("analysis")
                yield Select([], id="analysis", prompt="analysis", compact=True)
                yield Label("formats")
                yield CheckList[str](*((f, f, True) for f in EXPORT_FORMATS), id="formats", compact=True)
                yield Label("folder under exports/ (blank: id)")
                yield Input("", compact=True, id="out")
                yield MarkedCheckbox("overwrite existing", id="overwrite", compact=True)
                yield Label("", id="form-error", classes="problem")
                yield Button("Export (e)", id="export", variant="primary")
            with Vertical(classes="main"):
                yield Static("Export", classes="pane-title")
                yield JobStatus(id="export-status")
                yield Static("", id="export-result")
                yield Problems(id="analysis-problems")
                yield Static("Exports in this workspace", classes="pane-title")
                yield Static("", id="export-list")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(JobStatus).show(None, "nothing exported in this session yet")
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    @work(thread=True, exclusive=True, group="list", exit_on_error=False)
    def action_reload(self) -> None:
        analyses, unreadable = scan_analyses(self.kdcam.workspace.root)
        exports = list_exports(self.kdcam.workspace)
        self.app.call_from_thread(self._listed, analyses, unreadable, exports)

    def _listed(self, analyses: list[AnalysisInfo], unreadable: list[UnreadableAnalysis], exports: list[str]) -> None:
        self.query_one("#analysis-problems", Problems).show([(f"analysis {u.id}", u.reason) for u in unreadable])
        select: Select[str] = self.query_one("#analysis", Select)
        current = select.value
        select.set_options([(describe(a), a.id) for a in analyses])
        ids = [a.id for a in analyses]
        wanted = current if current in ids else self.kdcam.selected_analysis
        if wanted in ids:
            select.value = wanted
        elif ids:
            select.value = ids[0]
        self.query_one("#export-list", Static).update(Text(
            "\n".join(f"exports/{name}" for name in exports) or "none yet"))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self.action_export()

    def action_export(self) -> None:
        error = self.query_one("#form-error", Label)
        analysis = self.query_one("#analysis", Select).value
        formats = tuple(self.query_one("#formats", SelectionList).selected)
        if not isinstance(analysis, str):
            error.update("analysis: none yet — run one on the Analyze screen (3)")
            return
        if not formats:
            error.update("formats: select at least one")
            return
        error.update("")
        self.job = self.kdcam.submit(ExportSpec(
            workspace=str(self.kdcam.workspace.root), analysis=analysis,
            out=self.query_one("#out", Input).value.strip() or None, formats=formats,
            overwrite=self.query_one("#overwrite", Checkbox).value))
        self.query_one("#export-result", Static).update("")
        self.query_one(JobStatus).show(self.job)

    def action_cancel(self) -> None:
        if self.job is not None and self.job.active:
            self.job.handle.cancel()

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if record is None:
            return
        if record is self.job:
            self.query_one(JobStatus).show(record)
            if isinstance(event, Finished):
                spec = record.spec
                fallback = self.kdcam.workspace.exports / (spec.out or spec.analysis) \
                    if isinstance(spec, ExportSpec) else self.kdcam.workspace.exports
                path = output_path(event.result, fallback)
                self.query_one("#export-result", Static).update(Text.assemble(  # a path may hold '[': text
                    ("written:", "green"), " ", (str(path), "bold"), f"\nopen {path / 'report.html'} in a browser"))
                self.action_reload()
        elif isinstance(event, Finished) and isinstance(record.spec, ANALYSIS_SPECS):
            self.action_reload()
