"""The embedded demo: the whole product on the procedural ``shapes`` dataset, offline, on a CPU.

One job, three stages, each the same job a user would run by hand:
1. ``train``: a 1/8-width VGG-16 teacher, then one VGG-11 student per KD method (recipe ``demo``);
2. ``analyze``: the students' CAMs against the teacher's on the test split — Grad-CAM on the
   true class, plus Grad-CAM on each model's own prediction and Grad-CAM++ so the TUI's
   browser has a target and a method to switch between;
3. ``export``: a report of the Grad-CAM analysis under ``exports/``.
Progress and epoch events flow through the same context, so the TUI shows training live.
"""

from __future__ import annotations

from engine.analysis.job import run_analysis_job
from engine.api.results import DemoResult
from engine.api.specs import AnalyzeSpec, DemoSpec, ExportSpec, TrainSpec
from engine.api.workspace import Workspace
from engine.jobs import JobContext
from engine.reports.export import run_export_job
from engine.train.suite import run_train_job

DATASET = "shapes"
#: (analysis name, CAM method, target): the first is the one the report is made from
ANALYSES = (
    ("demo-gradcam", "gradcam", "label"),
    ("demo-gradcam-own", "gradcam", "own"),
    ("demo-gradcampp", "gradcam++", "label"),
)


def run_demo_job(spec: DemoSpec, ctx: JobContext) -> DemoResult:
    ws = Workspace.open(spec.workspace).ensure()
    ctx.log(f"demo workspace: {ws.root}")
    trained = run_train_job(
        TrainSpec(workspace=str(ws.root), dataset=DATASET, teacher="vgg16", student="vgg11",
                  methods=spec.methods, recipe="demo", seed=spec.seed),
        ctx,
    )
    teacher = trained.teacher.name
    students = tuple(s.name for s in trained.students)
    analyses = []
    for name, method, target in ANALYSES:
        ctx.check_cancelled()
        analyses.append(run_analysis_job(
            AnalyzeSpec(workspace=str(ws.root), teacher=teacher, students=students, dataset=DATASET,
                        method=method, target=target, seed=spec.seed, name=_free_name(ws, name)),
            ctx,
        ))
    report = None
    if spec.export:
        report = run_export_job(ExportSpec(workspace=str(ws.root), analysis=analyses[0].id), ctx)
    return DemoResult(str(ws.root), trained, tuple(analyses), report)


def _free_name(ws: Workspace, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``… when an earlier demo already used it."""
    candidate, suffix = name, 2
    while (ws.analyses / candidate).exists():
        candidate, suffix = f"{name}-{suffix}", suffix + 1
    return candidate
