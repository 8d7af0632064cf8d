"""Analyze: pick a teacher and students from the store, the images and the CAM settings;
watch the progress; the finished analysis opens in the leaderboard."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from engine.api.catalogue import CAM_METHODS, DEFAULT_CAM_METHOD, DEFAULT_TARGET, TARGETS, canonical_target
from engine.api.checkpoints import CheckpointMeta, UnreadableCheckpoint, scan_checkpoints
from engine.api.display import is_folded_twin, natural_sorted, shorten_all, twin_of
from engine.api.results import AnalysisJobResult
from engine.api.specs import AnalyzeSpec, DeleteCheckpointSpec, DemoSpec, ImportSpec, RenameCheckpointSpec, TrainSpec
from engine.errors import KdcamError
from engine.events import Finished, JobEvent
from tui.jobboard import JobRecord
from tui.screens.base import KdcamScreen
from tui.widgets.checklist import CheckList
from tui.widgets.jobstatus import JobStatus
from tui.widgets.problems import Problems

#: jobs that change the store: the pickers are re-read when one finishes
STORE_SPECS = (TrainSpec, ImportSpec, DemoSpec, RenameCheckpointSpec, DeleteCheckpointSpec)


def analysis_id_of(result: Any) -> str | None:
    """The id of the analysis a finished analyze job wrote."""
    return result.id if isinstance(result, AnalysisJobResult) else None


#: characters of a checkpoint name in the form (36 columns, less the border, padding and checkbox)
TEACHER_WIDTH = 28
STUDENT_WIDTH = 19


def preferred_teacher(teachers: list[CheckpointMeta], metas: list[CheckpointMeta]) -> str:
    """The teacher to start from: a best checkpoint (not a -last twin) with the most students."""
    names = [m.name for m in teachers]
    best = [m for m in teachers if not is_folded_twin(m.name, names)] or teachers
    return max(best, key=lambda t: (sum(m.teacher == t.name for m in metas), -names.index(t.name))).name


class AnalyzeScreen(KdcamScreen):
    SCREEN_TITLE = "Analyze"
    AUTO_FOCUS = None  # keys drive the screen; tab walks into the form
    BINDINGS = [Binding("s", "start", "Start analysis"), Binding("x", "cancel", "Cancel"),
                Binding("f5", "reload", "Reload checkpoints")]

    def __init__(self) -> None:
        super().__init__()
        self.metas: list[CheckpointMeta] = []
        self.job: JobRecord | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with VerticalScroll(classes="form"):
                yield Label("teacher")
                yield Select([], id="teacher", prompt="checkpoint", compact=True)
                yield Label("students")
                yield CheckList[str](id="students", compact=True)
                yield Label("dataset (blank: teacher's)")
                yield Input("", compact=True, id="dataset")
                yield Label("images N (blank: all)")
                yield Input("200", compact=True, id="n", type="integer")
                yield Label("CAM method")
                yield Select([(m, m) for m in CAM_METHODS], value=DEFAULT_CAM_METHOD, allow_blank=False, compact=True,
                             id="method")
                yield Label(f"target: {'|'.join(TARGETS)}")
                yield Input(DEFAULT_TARGET, compact=True, id="target")
                yield Label("layer (blank: last conv)")
                yield Input("", compact=True, id="layer")
                yield Label("", id="form-error", classes="problem")
                yield Button("Analyze (s)", id="start", variant="primary")
            with Vertical(classes="main"):
                yield Static("Analysis", classes="pane-title")
                yield JobStatus(id="analyze-status")
                yield Static("", id="analyze-help")
                yield Problems(id="checkpoint-problems")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#analyze-help", Static).update(
            "Every model's CAM is computed on the same images and compared with the teacher's "
            "(Pearson, L2 similarity, IoU, KL, each with its 95% interval and band) and with the baseline's "
            "(the si student). When it finishes, the Leaderboard (4) opens.")
        self.query_one(JobStatus).show(None, "no analysis running")
        self.action_reload()

    @work(thread=True, exclusive=True, group="list", exit_on_error=False)
    def action_reload(self) -> None:
        metas, unreadable = scan_checkpoints(self.kdcam.workspace.checkpoints)
        self.app.call_from_thread(self._listed, metas, unreadable)

    def _listed(self, metas: list[CheckpointMeta], unreadable: list[UnreadableCheckpoint]) -> None:
        self.metas = metas
        self.query_one("#checkpoint-problems", Problems).show([(f"checkpoint {u.name}", u.reason)
                                                               for u in unreadable])
        teachers = natural_sorted([m for m in metas if m.role == "teacher"] or metas, key=lambda m: m.name)
        select = self.query_one("#teacher", Select)
        current = select.value
        names = [m.name for m in teachers]
        short = shorten_all(names, TEACHER_WIDTH)
        select.set_options([(short[name], name) for name in names])
        if current in names:
            select.value = current
        elif names:
            select.value = preferred_teacher(teachers, metas)
        self.fill_students()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "teacher":
            self.fill_students()

    def fill_students(self) -> None:
        """Every other checkpoint, in natural order; the teacher's own students are selected, except
        the -last twins (the final epochs; their best checkpoint is the one compared)."""
        teacher = self.query_one("#teacher", Select).value
        students = self.query_one("#students", SelectionList)
        students.clear_options()
        others = natural_sorted([m for m in self.metas if m.name != teacher], key=lambda m: m.name)
        names = [m.name for m in others]
        short = shorten_all(names, STUDENT_WIDTH)
        owners = {teacher, twin_of(teacher) if isinstance(teacher, str) else None} - {None}
        for meta in others:
            chosen = meta.teacher in owners and not is_folded_twin(meta.name, names)
            # the method comes from the checkpoint's JSON, free text: shown as written
            students.add_option((Content(f"{short[meta.name]} {meta.method_label or meta.role}"), meta.name, chosen))

    def build_spec(self) -> AnalyzeSpec:
        teacher = self.query_one("#teacher", Select).value
        if not isinstance(teacher, str):
            raise ValueError("teacher: pick a checkpoint (the store is empty? import or train one)")
        students = tuple(self.query_one("#students", SelectionList).selected)
        if not students:
            raise ValueError("students: select at least one")
        n_text = self.query_one("#n", Input).value.strip()
        n = int(n_text) if n_text else None
        if n is not None and n < 1:
            raise ValueError("N: at least 1 image")
        teacher_meta = next((m for m in self.metas if m.name == teacher), None)
        if teacher_meta is None:
            raise ValueError(f"teacher: {teacher} is no longer in the store (f5 reloads)")
        dataset = self.query_one("#dataset", Input).value.strip() or teacher_meta.dataset or "shapes"
        try:
            target = canonical_target(self.query_one("#target", Input).value.strip() or DEFAULT_TARGET)
        except KdcamError as exc:
            raise ValueError(f"target: {exc}") from None
        return AnalyzeSpec(
            workspace=str(self.kdcam.workspace.root), teacher=teacher, students=students, dataset=dataset, n=n,
            method=str(self.query_one("#method", Select).value),
            target=target,
            layer=self.query_one("#layer", Input).value.strip() or None,
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def action_start(self) -> None:
        job = self.submit_form()
        if job is not None:
            self.job = job
            self.query_one(JobStatus).show(job)

    def action_cancel(self) -> None:
        if self.job is not None and self.job.active:
            self.job.handle.cancel()

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if record is not None and record is self.job:
            self.query_one(JobStatus).show(record)
            if isinstance(event, Finished):
                analysis_id = analysis_id_of(event.result)
                if analysis_id:
                    self.kdcam.selected_analysis = analysis_id
                self.kdcam.action_show("leaderboard")
        elif isinstance(event, Finished) and record is not None and isinstance(record.spec, STORE_SPECS):
            self.action_reload()
