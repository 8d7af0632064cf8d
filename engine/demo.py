"""The embedded demo: the whole product on the procedural ``shapes`` dataset, offline, on a CPU.

One job, three stages, each the same job a user would run by hand:
1. ``train``: one 1/16-width VGG-11 student per KD method (recipe ``demo``, 8 epochs) from a
   1/8-width VGG-16 teacher. The teacher ships with kdcam (``engine/demo_data``): it was trained
   by kdcam's own command with the same recipe (40 epochs, which alone would take the demo past
   its five-minute budget), so the demo's teacher is clearly stronger than the students it
   teaches. ``--train-teacher`` trains it here instead (``kdcam -w W train --recipe demo
   --methods si`` is the same command; see ``TEACHER_COMMAND``);
2. ``analyze``: the students' CAMs against the teacher's on the test split — Grad-CAM on the
   true class at the last stage and at stage 3, plus Grad-CAM on each model's own prediction and
   Grad-CAM++ so the TUI's browser has a target and a method to switch between; each compared
   with the independent ``si`` student's;
3. ``export``: a report of the Grad-CAM analysis under ``exports/``.
Progress and epoch events flow through the same context, so the TUI shows training live.
"""

from __future__ import annotations

from pathlib import Path

from engine.analysis.job import run_analysis_job
from engine.api.results import DemoResult
from engine.api.specs import AnalyzeSpec, DemoSpec, ExportSpec, TrainSpec
from engine.api.workspace import Workspace
from engine.checkpoints.store import CheckpointStore
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.reports.export import run_export_job
from engine.train.suite import run_train_job

DATASET = "shapes"
#: the packaged teacher (weights + metadata in engine/demo_data) and how it was made
TEACHER = "vgg16-shapes-demo-teacher"
TEACHER_DIR = Path(__file__).parent / "demo_data"
TEACHER_COMMAND = ("kdcam -w W train --recipe demo --methods si --seed 0   # then vgg16-shapes-demo-s0 "
                   "(the best-on-validation epoch) is the teacher, renamed")
#: (analysis name, CAM method, target, layer): the first is the one the report is made from. The
#: last stage's maps are 4x4 on a 32-pixel image; stage 3's (8x8) show whether what a student
#: shares with the teacher there holds at a finer scale (RESULTS.md).
ANALYSES: tuple[tuple[str, str, str, str | None], ...] = (
    ("demo-gradcam", "gradcam", "label", None),
    ("demo-gradcam-stage3", "gradcam", "label", "stage3"),
    ("demo-gradcam-own", "gradcam", "own", None),
    ("demo-gradcampp", "gradcam++", "label", None),
)


def run_demo_job(spec: DemoSpec, ctx: JobContext) -> DemoResult:
    ws = Workspace.open(spec.workspace).ensure()
    ctx.log(f"demo workspace: {ws.root}")
    teacher_source = "vgg16" if spec.train_teacher else install_teacher(ws)
    trained = run_train_job(
        TrainSpec(workspace=str(ws.root), dataset=DATASET, teacher=teacher_source, student="vgg11",
                  methods=spec.methods, recipe="demo", seed=spec.seed),
        ctx,
    )
    teacher = trained.teacher.name
    students = tuple(s.name for s in trained.students)
    analyses = []
    for name, method, target, layer in ANALYSES:
        ctx.check_cancelled()
        analyses.append(run_analysis_job(
            AnalyzeSpec(workspace=str(ws.root), teacher=teacher, students=students, dataset=DATASET,
                        method=method, target=target, layer=layer, seed=spec.seed, name=_free_name(ws, name)),
            ctx,
        ))
    report = None
    if spec.export:
        report = run_export_job(ExportSpec(workspace=str(ws.root), analysis=analyses[0].id), ctx)
    return DemoResult(str(ws.root), trained, tuple(analyses), report)


def install_teacher(ws: Workspace) -> str:
    """Put the packaged teacher into the workspace's store (through the store: checked, atomic);
    a checkpoint of that name already there is used as it is."""
    store = CheckpointStore(ws.checkpoints)
    if not store.exists(TEACHER):
        packaged = CheckpointStore(TEACHER_DIR)
        if not packaged.exists(TEACHER):
            raise KdcamError(f"the demo teacher is missing from {TEACHER_DIR} (a broken install?); "
                             "kdcam demo --train-teacher trains one instead")
        model, meta = packaged.load(TEACHER)
        store.save(TEACHER, model, meta)
    return TEACHER


def _free_name(ws: Workspace, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``… when an earlier demo already used it."""
    candidate, suffix = name, 2
    while (ws.analyses / candidate).exists():
        candidate, suffix = f"{name}-{suffix}", suffix + 1
    return candidate
