"""Train: queue teacher/student runs, watch the running one live (table, bars, curves),
cancel and resume; runs started headless in the same workspace are watched from disk."""

from __future__ import annotations

import dataclasses
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, SelectionList, Static

from engine.events import Epoch, JobEvent, Progress, Started
from engine.api.specs import TrainSpec
from tui import format as fmt
from tui.jobboard import JobRecord
from tui.screens.base import KdcamScreen
from tui.widgets.chart import BrailleChart

TRAIN_KINDS = ("train", "demo")
RECIPES = ("quick", "paper", "demo")
DEFAULT_METHODS: tuple[str, ...] = next(f.default for f in dataclasses.fields(TrainSpec) if f.name == "methods")


def eta_seconds(record: dict[str, Any]) -> float | None:
    """Time left, from the run's mean epoch time so far (``elapsed`` counts from the run's start)."""
    epoch, epochs, elapsed = record.get("epoch"), record.get("epochs"), record.get("elapsed")
    if not epoch or not epochs or elapsed is None:
        return None
    return elapsed / epoch * (epochs - epoch)


def epoch_row(record: dict[str, Any], terms: list[str]) -> list[str]:
    losses = record.get("losses", {})
    return [
        f"{record.get('epoch', '?')}/{record.get('epochs', '?')}",
        *(fmt.number(losses.get(term), 4) for term in terms),
        fmt.percent(record.get("train_acc")),
        fmt.percent(record.get("test_acc")),
        f"{record['lr']:.2e}" if record.get("lr") is not None else "—",
        f"{record['images_per_s']:.0f}" if record.get("images_per_s") is not None else "—",
        fmt.duration(eta_seconds(record)),
    ]


def total_loss(record: dict[str, Any]) -> float | None:
    losses = record.get("losses", {})
    return sum(losses.values()) if losses else None


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
        self.disk_runs: dict[str, dict[str, Any]] = {}  # run id -> {"status", "records"} read from runs/
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
                yield SelectionList[str](*((m, m, True) for m in DEFAULT_METHODS), id="methods", compact=True)
                yield Label("recipe")
                yield Select([(r, r) for r in RECIPES], value="quick", allow_blank=False, compact=True, id="recipe")
                yield Label("epochs (blank: recipe's)")
                yield Input("", compact=True, id="epochs", type="integer")
                yield Label("", id="form-error", classes="problem")
                yield Button("Queue run (s)", id="queue", variant="primary")
            with Vertical(classes="main"):
                yield Static("Queue", classes="pane-title")
                jobs: DataTable = DataTable(id="jobs", cursor_type="row", show_cursor=False)
                jobs.add_columns("job", "what", "state")
                yield jobs
                yield Label("no job running", id="job-status")
                yield ProgressBar(id="job-progress", show_eta=False)
                yield Label("", id="run-title", classes="pane-title")
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
        return TrainSpec(workspace=str(self.kdcam.workspace.root), methods=methods, recipe=recipe,
                         epochs=epochs, width=width, **values)

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
        status = self.run_status(run_id) if run_id else None
        live = self.live_runs().get(run_id) if run_id else None
        if run_id is None or status == "finished" or (live is not None and live[0].active):
            self.notify("show an unfinished run that is not running first ([ and ] switch runs)",
                        severity="warning")
            return
        self.follow_live = True
        self.kdcam.submit(TrainSpec(workspace=str(self.kdcam.workspace.root), resume=run_id))
        self.refresh_jobs()

    # -- runs --------------------------------------------------------------------------
    def live_runs(self) -> dict[str, tuple[JobRecord, list[dict[str, Any]]]]:
        runs = {}
        for record in self.kdcam.board.of_kind(*TRAIN_KINDS):
            for run_id, epochs in record.epochs.items():
                runs[run_id] = (record, epochs)
        return runs

    def run_ids(self) -> list[str]:
        return sorted(set(self.disk_runs) | set(self.live_runs()))

    def run_status(self, run_id: str) -> str:
        live = self.live_runs().get(run_id)
        if live is not None and live[0].active and live[0].current_run == run_id:
            return "running"
        disk = self.disk_runs.get(run_id)
        if disk is not None:
            return disk["status"]
        return "finished" if live is not None and live[0].state == "finished" else (live[0].state if live else "?")

    def run_records(self, run_id: str) -> list[dict[str, Any]]:
        live = self.live_runs().get(run_id)
        disk = self.disk_runs.get(run_id, {}).get("records", [])
        if live is not None and len(live[1]) >= len(disk):
            return live[1]
        return disk

    def action_cycle_run(self, step: int) -> None:
        ids = self.run_ids()
        if not ids:
            return
        index = ids.index(self.shown_run) if self.shown_run in ids else (-1 if step > 0 else 0)
        self.follow_live = False
        self.show_run(ids[(index + step) % len(ids)])

    @work(thread=True, exclusive=True, group="runs")
    def action_reload_runs(self) -> None:
        """List runs/ off the UI thread: includes runs a headless ``kdcam train`` is writing."""
        from engine.train.runs import list_runs

        runs = {}
        for run in list_runs(self.kdcam.workspace):
            runs[run.run_id] = {"status": run.state, "records": list(run.events)}
        self.app.call_from_thread(self._runs_loaded, runs)

    def _runs_loaded(self, runs: dict[str, dict[str, Any]]) -> None:
        self.disk_runs = runs
        self.show_empty_title()
        if self.shown_run is None:
            running = [r for r, info in runs.items() if info["status"] == "running"]
            ids = running or self.run_ids()
            if ids:
                self.show_run(ids[-1])
        else:
            self.show_run(self.shown_run)

    def poll_disk_run(self) -> None:
        """Follow a run another process is writing: re-read it while it says running."""
        run_id = self.shown_run
        if run_id is None or run_id in self.live_runs():
            return
        if self.disk_runs.get(run_id, {}).get("status") == "running":
            self.read_disk_run(run_id)

    @work(thread=True, exclusive=True, group="poll")
    def read_disk_run(self, run_id: str) -> None:
        from engine.train.runs import read_run

        run = read_run(self.kdcam.workspace, run_id)
        info = {"status": run.state, "records": list(run.events)}
        self.app.call_from_thread(self._disk_run_read, run_id, info)

    def _disk_run_read(self, run_id: str, info: dict[str, Any]) -> None:
        self.disk_runs[run_id] = info
        if run_id == self.shown_run:
            self.show_run(run_id)

    # -- display -------------------------------------------------------------------------
    def show_run(self, run_id: str) -> None:
        self.shown_run = run_id
        records = self.run_records(run_id)
        terms = sorted({term for r in records for term in r.get("losses", {})})
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
            f"Run {run_id} — {self.run_status(run_id)}  ({position}/{len(self.run_ids())}, [ ] switch)")
        self.query_one("#loss-curve", BrailleChart).set_values([total_loss(r) for r in records])
        self.query_one("#acc-curve", BrailleChart).set_values([r.get("test_acc") for r in records])

    def show_empty_title(self) -> None:
        """Before any epoch exists, say what is coming (or how to start)."""
        if self.run_ids():
            return
        running = self.kdcam.board.running()
        self.query_one("#run-title", Label).update(
            f"Waiting for the first epoch of: {running.title}" if running is not None and running.kind in TRAIN_KINDS
            else "No training runs in this workspace yet: fill in the form (tab) and press s.")

    def refresh_jobs(self) -> None:
        table = self.query_one("#jobs", DataTable)
        table.clear()
        for record in self.kdcam.board.of_kind(*TRAIN_KINDS):
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
        elif not isinstance(event, Started) and record is not None and record.kind in TRAIN_KINDS:
            self.action_reload_runs()

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.refresh_jobs()
            self.action_reload_runs()
