"""Train: queue teacher/student runs, watch the running one live (table, bars, curves),
cancel and resume; runs started headless in the same workspace are watched from disk."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, SelectionList, Static

from engine.api.catalogue import DEFAULT_METHODS, KD_METHODS, RECIPES
from engine.api.runs import RunInfo, UnreadableRun, read_run, scan_runs
from engine.api.specs import TrainSpec
from engine.errors import KdcamError
from engine.events import Epoch, JobEvent, Progress, Started
from tui.jobboard import JobRecord
from tui.rows.runs import TRAIN_SPECS, DiskRun, RunBook, epoch_row, loss_terms, total_loss
from tui.screens.base import KdcamScreen
from tui.widgets.chart import BrailleChart
from tui.widgets.problems import Problems

DEFAULT_RECIPE = "quick"


class TrainScreen(KdcamScreen):
    SCREEN_TITLE = "Train"
    AUTO_FOCUS = None  # keys drive the screen; tab walks into the form
    BINDINGS = [
        Binding("s", "queue", "Queue run"),
        Binding("x", "cancel", "Cancel job"),
        Binding("r", "resume", "Resume run"),
        Binding("left_square_bracket", "cycle_run(-1)", "Prev run", key_display="["),
        Binding("right_square_bracket", "cycle_run(1)", "Next run", key_display="]"),
        Binding("f5", "reload_runs", "Reload runs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.shown_run: str | None = None
        self.follow_live = True  # show whichever run is producing epochs
        self.runs = RunBook(self.kdcam.board)
        self._columns: tuple[str, ...] = ()
        self._stale = False  # events arrived while another screen was shown
        self._table_run: str | None = None  # the run whose epochs the table holds

    # -- layout ----------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with VerticalScroll(classes="form", id="train-form"):
                yield Label("dataset")
                yield Input("shapes", compact=True, id="dataset")
                yield Label("teacher: arch or checkpoint")
                yield Input("vgg16", compact=True, id="teacher")
                yield Label("student architecture")
                yield Input("vgg11", compact=True, id="student")
                yield Label("width multiplier")
                yield Input("1.0", compact=True, id="width", type="number")
                yield Label("methods")
                yield SelectionList[str](*((m, m, m in DEFAULT_METHODS) for m in KD_METHODS), id="methods",
                                         compact=True)
                yield Label("recipe")
                yield Select([(r, r) for r in RECIPES], value=DEFAULT_RECIPE, allow_blank=False, compact=True,
                             id="recipe")
                yield Label("epochs (blank: recipe's)")
                yield Input("", compact=True, id="epochs", type="integer")
                yield Label("", id="form-error", classes="problem")
                yield Button("Queue run (s)", id="queue", variant="primary")
            with Vertical(classes="main"):
                yield Static("Queue", classes="pane-title")
                jobs: DataTable[str] = DataTable(id="jobs", cursor_type="row", show_cursor=False)
                jobs.add_columns("job", "what", "state")
                yield jobs
                yield Label("no job running", id="job-status")
                yield ProgressBar(id="job-progress", show_eta=False)
                yield Label("", id="run-title", classes="pane-title")
                yield Problems(id="run-problems")
                yield DataTable(id="epoch-table", cursor_type="none", zebra_stripes=True)
                with Horizontal(id="curves"):
                    yield BrailleChart("loss", "magenta", id="loss-curve")
                    yield BrailleChart("test acc", "green", id="acc-curve")

    def on_mount(self) -> None:
        super().on_mount()
        self.refresh_jobs()
        self.action_reload_runs()
        self.set_interval(2.0, self.poll_disk_run)

    # -- queue -----------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "queue":
            self.action_queue()

    def build_spec(self) -> TrainSpec:
        """The form as a spec; ValueError with a message naming the field when it is not one."""
        values = {key: self.query_one(f"#{key}", Input).value.strip() for key in ("dataset", "teacher", "student")}
        for key, value in values.items():
            if not value:
                raise ValueError(f"{key}: required")
        dataset, teacher, student = values["dataset"], values["teacher"], values["student"]
        methods = tuple(self.query_one("#methods", SelectionList).selected)
        if not methods:
            raise ValueError("methods: select at least one")
        epochs_text = self.query_one("#epochs", Input).value.strip()
        epochs = int(epochs_text) if epochs_text else None
        if epochs is not None and epochs < 1:
            raise ValueError("epochs: at least 1")
        width_text = self.query_one("#width", Input).value.strip()
        width = float(width_text) if width_text else 1.0
        if width <= 0:
            raise ValueError("width multiplier: must be positive")
        recipe = str(self.query_one("#recipe", Select).value)
        return TrainSpec(workspace=str(self.kdcam.workspace.root), dataset=dataset, teacher=teacher, student=student,
                         methods=methods, recipe=recipe, epochs=epochs, width=width)

    def action_queue(self) -> None:
        if self.submit_form() is not None:
            self.follow_live = True
            self.refresh_jobs()

    def action_cancel(self) -> None:
        active = [r for r in self.kdcam.board.records.values() if r.active]
        if not active:
            self.notify("no job is queued or running")
            return
        target = self.kdcam.board.running() or active[-1]
        target.handle.cancel()
        self.notify(f"cancelling {target.title}")

    def action_resume(self) -> None:
        run_id = self.shown_run
        status = self.runs.status(run_id) if run_id else None
        live = self.runs.live().get(run_id) if run_id else None
        if run_id is None or status in ("finished", "unreadable") or (live is not None and live[0].active):
            self.notify("show an unfinished run that is not running first ([ and ] switch runs)",
                        severity="warning")
            return
        self.follow_live = True
        self.kdcam.submit(TrainSpec(workspace=str(self.kdcam.workspace.root), resume=run_id))
        self.refresh_jobs()

    # -- runs --------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        return self.runs.ids()

    def action_cycle_run(self, step: int) -> None:
        ids = self.run_ids()
        if not ids:
            return
        index = ids.index(self.shown_run) if self.shown_run in ids else (-1 if step > 0 else 0)
        self.follow_live = False
        self.show_run(ids[(index + step) % len(ids)])

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def action_reload_runs(self) -> None:
        """List runs/ off the UI thread: includes runs a headless ``kdcam train`` is writing."""
        runs, unreadable = scan_runs(self.kdcam.workspace.root)
        self.app.call_from_thread(self._runs_loaded, runs, unreadable)

    def _runs_loaded(self, runs: list[RunInfo], unreadable: list[UnreadableRun]) -> None:
        self.runs.load(runs, unreadable)
        self.query_one("#run-problems", Problems).show(self.runs.problems())
        self.show_empty_title()
        if self.shown_run is None:
            running = [run.run_id for run in runs if run.state == "running"]
            ids = running or self.run_ids()
            if ids:
                self.show_run(ids[-1])
        else:
            self.show_run(self.shown_run)

    def poll_disk_run(self) -> None:
        """Follow a run another process is writing: re-read it while it says running."""
        run_id = self.shown_run
        if run_id is None or run_id in self.runs.live():
            return
        disk = self.runs.disk.get(run_id)
        if disk is not None and disk.state == "running":
            self.read_disk_run(run_id)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def read_disk_run(self, run_id: str) -> None:
        try:
            disk = DiskRun.of(read_run(self.kdcam.workspace.root, run_id))
        except KdcamError as exc:
            disk = DiskRun.broken(UnreadableRun(run_id, self.kdcam.workspace.runs / run_id, str(exc)))
        self.app.call_from_thread(self._disk_run_read, run_id, disk)

    def _disk_run_read(self, run_id: str, disk: DiskRun) -> None:
        self.runs.disk[run_id] = disk
        self.query_one("#run-problems", Problems).show(self.runs.problems())
        if run_id == self.shown_run:
            self.show_run(run_id)

    # -- display -------------------------------------------------------------------------
    def show_run(self, run_id: str) -> None:
        self.shown_run = run_id
        records = self.runs.records(run_id)
        terms = loss_terms(records)
        columns = ("epoch", *terms, "train acc", "test acc", "lr", "img/s", "ETA")
        table = self.query_one("#epoch-table", DataTable)
        same_run = run_id == self._table_run and columns == self._columns
        if columns != self._columns:
            table.clear(columns=True)
            table.add_columns(*columns)
            self._columns = columns
        if not (same_run and table.row_count <= len(records)):
            table.clear()
        self._table_run = run_id
        for record in records[table.row_count:]:  # a live run only appends
            table.add_row(*epoch_row(record, terms))
        if records:
            table.move_cursor(row=len(records) - 1)
        position = self.run_ids().index(run_id) + 1 if run_id in self.run_ids() else 0
        self.query_one("#run-title", Label).update(
            f"Run {run_id} — {self.runs.status(run_id)}  ({position}/{len(self.run_ids())}, [ ] switch)")
        self.query_one("#loss-curve", BrailleChart).set_values([total_loss(r) for r in records])
        self.query_one("#acc-curve", BrailleChart).set_values([r.test_acc for r in records])

    def show_empty_title(self) -> None:
        """Before any epoch exists, say what is coming (or how to start)."""
        if self.run_ids():
            return
        running = self.kdcam.board.running()
        self.query_one("#run-title", Label).update(
            f"Waiting for the first epoch of: {running.title}"
            if running is not None and isinstance(running.spec, TRAIN_SPECS)
            else "No training runs in this workspace yet: fill in the form (tab) and press s.")

    def refresh_jobs(self) -> None:
        table = self.query_one("#jobs", DataTable)
        table.clear()
        for record in self.kdcam.board.of_type(*TRAIN_SPECS):
            table.add_row(record.job_id, record.title, record.state)
        self.refresh_progress()
        self.show_empty_title()

    def refresh_progress(self) -> None:
        running = self.kdcam.board.running()
        status = self.query_one("#job-status", Label)
        bar = self.query_one("#job-progress", ProgressBar)
        progress = running.progress if running is not None else None
        # An idle bar would animate (indeterminate); it is shown only while a job reports progress.
        bar.display = progress is not None
        if running is None:
            status.update("no job running")
            return
        if progress is None:
            status.update(f"{running.title}: starting")
            return
        status.update(f"{running.title}: {progress.phase} {progress.done}/{progress.total} {progress.message}")
        bar.update(total=max(progress.total, 1), progress=progress.done)

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if not self.is_current:
            # Hidden: the board keeps every event; redraw once when the screen is shown again.
            self._stale = True
            if isinstance(event, Epoch) and self.follow_live:
                self.shown_run = event.run_id
            return
        if isinstance(event, Progress):
            if record is not None and record.state == "running":
                self.refresh_progress()
            return
        self.refresh_jobs()
        if isinstance(event, Epoch):
            if self.follow_live or event.run_id == self.shown_run:
                self.show_run(event.run_id)
        elif not isinstance(event, Started) and record is not None and isinstance(record.spec, TRAIN_SPECS):
            self.action_reload_runs()

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.refresh_jobs()
            self.action_reload_runs()
