"""Train: queue teacher/student runs, watch the running one live (table, bars, curves),
cancel and resume; runs started headless in the same workspace are watched from disk."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, SelectionList, Static

from engine.api.catalogue import DEFAULT_METHODS, KD_METHODS, RECIPES, default_recipe, parse_method_options, parse_seeds
from engine.api.display import shorten
from engine.api.runs import RunInfo, UnreadableRun, has_validation, runs_signature, scan_runs
from engine.api.specs import TrainSpec
from engine.errors import KdcamError
from engine.events import Epoch, JobEvent, Progress, Started
from tui.jobboard import JobRecord
from tui.rows.runs import TRAIN_SPECS, RunBook, epoch_columns, epoch_row, loss_terms, total_loss
from tui.screens.base import KdcamScreen
from tui.widgets.chart import BrailleChart
from tui.widgets.checklist import CheckList
from tui.widgets.problems import Problems

#: seconds between looks at runs/ (a stat per run file; the runs are re-read only when one changed)
POLL_S = 1.0
#: polls between re-checks of running runs' processes (a killed run reads as interrupted)
LIVENESS_EVERY = 5
#: how the form names its numeric fields in messages (as their labels say)
FIELD_LABELS = {"lr": "learning rate", "batch_size": "batch size", "width": "student width",
                "teacher_width": "teacher width"}
#: the recipe the CLI would pick: demo on the embedded shapes dataset, quick on real data
AUTO_RECIPE = "auto"
AUTO_RECIPE_LABEL = "auto (demo on shapes)"


def queue_row(record: JobRecord) -> tuple[str, str, str, str, str]:
    """A queued or running job in full: what it trains, every method, its state and where it is
    (the run and epoch in progress, batches done of the epoch's total)."""
    spec = record.spec
    if isinstance(spec, TrainSpec) and not spec.resume:
        what, methods = f"{spec.teacher}→{spec.student} on {spec.dataset}", ",".join(spec.methods)
    else:
        what, methods = record.title, "—"
    progress = record.progress
    where = "—" if progress is None or record.state != "running" else \
        f"{progress.phase} {progress.message} {progress.done}/{progress.total}".replace("  ", " ")
    return record.job_id, what, methods, record.state, where


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
        self._signature: tuple[Any, ...] | None = None  # runs/ as last read (engine.api.runs.runs_signature)
        self._polls = 0

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
                yield Label("methods")
                yield CheckList[str](*((m, m, m in DEFAULT_METHODS) for m in KD_METHODS), id="methods", compact=True)
                yield Label("recipe")
                yield Select([(AUTO_RECIPE_LABEL, AUTO_RECIPE), *((r, r) for r in RECIPES)], value=AUTO_RECIPE,
                             allow_blank=False, compact=True, id="recipe")
                yield Label("epochs (blank: recipe's)")
                yield Input("", compact=True, id="epochs", type="integer")
                yield Label("student width (blank: recipe's)")
                yield Input("", compact=True, id="width", type="number")
                yield Label("teacher width (blank: recipe's)")
                yield Input("", compact=True, id="teacher_width", type="number")
                yield Label("batch size (blank: recipe's)")
                yield Input("", compact=True, id="batch_size", type="integer")
                yield Label("learning rate (blank: recipe's)")
                yield Input("", compact=True, id="lr", type="number")
                yield Label("seeds (e.g. 0 or 0,1,2)")
                yield Input("0", compact=True, id="seed")
                yield Label("method options, e.g. kd.temperature=2")
                yield Input("", compact=True, id="options")
                yield Label("device (auto, cpu, cuda, cuda:N)")
                yield Input("auto", compact=True, id="device")
                yield Label("", id="form-error", classes="problem")
                yield Button("Queue run (s)", id="queue", variant="primary")
            with Vertical(classes="main"):
                yield Static("Queue", classes="pane-title")
                jobs: DataTable[str] = DataTable(id="jobs", cursor_type="row", show_cursor=False)
                jobs.add_columns("job", "what", "methods", "state", "progress")
                yield jobs
                yield Label("no job running", id="job-status")
                yield ProgressBar(id="job-progress", show_eta=False)
                yield Label("", id="run-title", classes="pane-title")
                yield Problems(id="run-problems")
                yield DataTable(id="epoch-table", cursor_type="none", zebra_stripes=True)
                with Horizontal(id="curves"):
                    yield BrailleChart("loss", "magenta", id="loss-curve")
                    yield BrailleChart("test acc %", "green", id="acc-curve")

    def on_mount(self) -> None:
        super().on_mount()
        self.refresh_jobs()
        self.action_reload_runs()
        self.set_interval(POLL_S, self.poll_workspace)

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
        recipe = str(self.query_one("#recipe", Select).value)
        try:
            options = parse_method_options([part for part in self.text("options").split(",") if part.strip()])
        except KdcamError as exc:
            raise ValueError(f"method options: {exc}") from None
        device = self.text("device") or "auto"
        if not (device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")):
            raise ValueError("device: auto, cpu, cuda, cuda:N or mps")
        try:
            seeds = parse_seeds(self.text("seed") or "0")
        except KdcamError as exc:
            raise ValueError(str(exc)) from None
        return TrainSpec(workspace=str(self.kdcam.workspace.root), dataset=dataset, teacher=teacher, student=student,
                         methods=methods, recipe=default_recipe(dataset) if recipe == AUTO_RECIPE else recipe,
                         epochs=self.number("epochs", int), width=self.number("width", float, positive=True),
                         teacher_width=self.number("teacher_width", float, positive=True),
                         batch_size=self.number("batch_size", int), lr=self.number("lr", float, positive=True),
                         seed=seeds[0], seeds=seeds if len(seeds) > 1 else (), device=device, method_options=options)

    def text(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def number(self, field: str, kind: type[int] | type[float], positive: bool = False,
               minimum: int = 1) -> Any:
        """An optional numeric field: None when blank; ValueError naming the field when out of range."""
        text = self.text(field)
        if not text:
            return None
        label = FIELD_LABELS.get(field, field)
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{label}: not a{'n integer' if kind is int else ' number'}") from None
        if positive and not value > 0:
            raise ValueError(f"{label}: must be positive")
        if kind is int and value < minimum:
            raise ValueError(f"{label}: at least {minimum}")
        return value

    def on_input_changed(self, event: Input.Changed) -> None:
        """Validation as the user types: the form says what is wrong before s is pressed."""
        error = self.query_one("#form-error", Label)
        try:
            self.build_spec()
        except ValueError as exc:
            error.update(Text(str(exc)))  # the message quotes what was typed: '[/]' is text
        else:
            error.update("")

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
        signature = runs_signature(self.kdcam.workspace)
        runs, unreadable = scan_runs(self.kdcam.workspace.root)
        self.app.call_from_thread(self._runs_loaded, runs, unreadable, signature)

    def _runs_loaded(self, runs: list[RunInfo], unreadable: list[UnreadableRun],
                     signature: tuple[Any, ...] | None = None) -> None:
        if signature is not None:
            self._signature = signature
        self.runs.load(runs, unreadable)
        self.query_one("#run-problems", Problems).show(self.runs.problems())
        self.show_empty_title()
        running = [run.run_id for run in runs if run.state == "running"]  # newest first
        if self.follow_live and running and not self.shown_is_running():
            self.show_run(running[0])  # a run another process started: follow it
        elif self.shown_run is None:
            ids = running or self.run_ids()
            if ids:
                self.show_run(ids[0] if running else ids[-1])
        else:
            self.show_run(self.shown_run)

    def shown_is_running(self) -> bool:
        return self.shown_run is not None and self.runs.status(self.shown_run) == "running"

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll_workspace(self) -> None:
        """Every POLL_S: re-read runs/ when a file of it changed (a new run, an epoch, a state), and every
        few seconds while a run says running (a killed process changes no file but makes it interrupted)."""
        self._polls += 1
        signature = runs_signature(self.kdcam.workspace)
        recheck = self._polls % LIVENESS_EVERY == 0 and any(d.state == "running" for d in self.runs.disk.values())
        if signature == self._signature and not recheck:
            return
        runs, unreadable = scan_runs(self.kdcam.workspace.root)
        self.app.call_from_thread(self._runs_loaded, runs, unreadable, signature)

    # -- display -------------------------------------------------------------------------
    def show_run(self, run_id: str) -> None:
        self.shown_run = run_id
        records = self.runs.records(run_id)
        terms, validation = loss_terms(records), has_validation(records)
        columns = epoch_columns(terms, validation)
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
            table.add_row(*epoch_row(record, terms, validation))
        if records:
            table.move_cursor(row=len(records) - 1)
        position = self.run_ids().index(run_id) + 1 if run_id in self.run_ids() else 0
        title = self.query_one("#run-title", Label)
        # the id on the first line (cut in the middle where the pane is narrow), the state after it
        room = title.content_size.width - len("Run ")
        shown = shorten(run_id, room, self.run_ids()) if room > 0 else run_id
        title.update(Text(f"Run {shown} — {self.runs.status(run_id)}{self.runs.ranks(run_id)}  "  # ids of unreadable
                          f"({position}/{len(self.run_ids())}, [ ] switch)"))  # runs are raw folder names
        self.query_one("#loss-curve", BrailleChart).set_values([total_loss(r) for r in records])
        self.query_one("#acc-curve", BrailleChart).set_values(
            [None if r.test_acc is None else 100 * r.test_acc for r in records])

    def show_empty_title(self) -> None:
        """Before any epoch exists, say what is coming (or how to start)."""
        if self.run_ids():
            return
        running = self.kdcam.board.running()
        self.query_one("#run-title", Label).update(Text(  # a title names the dataset spec: free text
            f"Waiting for the first epoch of: {running.title}"
            if running is not None and isinstance(running.spec, TRAIN_SPECS)
            else "No training runs in this workspace yet: fill in the form (tab) and press s."))

    def refresh_jobs(self) -> None:
        table = self.query_one("#jobs", DataTable)
        table.clear()
        for record in self.kdcam.board.of_type(*TRAIN_SPECS):
            table.add_row(*(Text(cell) for cell in queue_row(record)))  # job text quotes specs: never markup
        self.refresh_progress()
        self.show_empty_title()

    def refresh_queue_row(self, record: JobRecord) -> None:
        """One job's progress cell, without rebuilding the table on every batch."""
        table = self.query_one("#jobs", DataTable)
        for row_key in table.rows:
            if table.get_row(row_key)[0] == record.job_id:
                table.update_cell(row_key, table.ordered_columns[-1].key, queue_row(record)[-1], update_width=True)
                return

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
            status.update(Text(f"{running.title}: starting"))
            return
        status.update(Text(f"{running.title}: {progress.phase} {progress.done}/{progress.total} {progress.message}"))
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
                self.refresh_queue_row(record)
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
