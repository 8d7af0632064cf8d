"""Workspaces the TUI tests drive, made with the engine itself: tiny seeded models saved
through the checkpoint store and (when the analysis job exists) a real analysis of them.
Everything shown on screen is deterministic (fixed dates, fixed analysis id)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from pathlib import Path

from engine.api.workspace import Workspace

DATASET = "shapes?classes=4&train=64&test=32"
ANALYSIS_ID = "fixture-gradcam"
CREATED = "2026-01-02T03:04:05+00:00"
MODELS = (  # name, role, method, teacher, accuracy
    ("teacher", "teacher", None, None, 0.875),
    ("kd-student", "student", "kd", "teacher", 0.625),
    ("at-student", "student", "at", "teacher", 0.5),
)
#: a demo-sized zoo: a teacher and seven students, named as the trainer names them (twins included),
#: so the browser has nine cards to lay out
ZOO = (("teacher", "teacher", None, None, 0.875),
       *((f"vgg8-{method}-shapes-demo-s0", "student", method, "teacher", 0.5)
         for method in ("si", "kd", "dkd", "at", "crd")),
       ("vgg8-kd-shapes-demo-s0-last", "student", "kd", "teacher", 0.5),
       ("vgg8-at-shapes-demo-s0-last", "student", "at", "teacher", 0.5))
ZOO_ANALYSIS_ID = "zoo-gradcam"


def save_models(root: Path, models: tuple[tuple[str, str, str | None, str | None, float], ...] = MODELS) -> Workspace:
    import torch

    from engine.api.checkpoints import CheckpointMeta
    from engine.checkpoints.store import CheckpointStore
    from engine.models import build_model

    ws = Workspace.open(root).ensure()
    store = CheckpointStore(ws.checkpoints)
    for seed, (name, role, method, teacher, accuracy) in enumerate(models):
        torch.manual_seed(seed)
        model = build_model("vgg8", 4, width=0.125)
        store.save(name, model, CheckpointMeta(
            name=name, arch="vgg8", num_classes=4, width=0.125, dataset=DATASET, role=role, method=method,
            teacher=teacher, accuracy=accuracy, recipe="demo" if role != "teacher" else None, created=CREATED))
    return ws


def foreign_checkpoint(path: Path) -> Path:
    """A bare state dict as other code bases save it (``torch.save(model.state_dict())``)."""
    import torch

    from engine.models import build_model

    torch.manual_seed(7)
    torch.save(build_model("vgg8", 4, width=0.125).state_dict(), path)
    return path


def run_analysis(ws: Workspace, students: tuple[str, ...] = ("kd-student", "at-student"),
                 name: str = ANALYSIS_ID) -> str:
    from engine.api.specs import AnalyzeSpec
    from engine.events import JobEvent
    from engine.jobs import JobContext, run_inline

    spec = AnalyzeSpec(workspace=str(ws.root), teacher="teacher", students=students,
                       dataset=DATASET, n=12, name=name, batch_size=16)

    def ignore(event: JobEvent) -> None:
        pass

    run_inline(spec, JobContext("fixture", ignore, threading.Event()))
    return name


def build_workspace(root: Path, analysis: bool = True) -> Workspace:
    ws = save_models(root)
    if analysis:
        run_analysis(ws)
    return ws


def test_fixture_workspace_lists_models_and_analysis() -> None:
    from engine.api.analyses import list_analyses
    from engine.api.checkpoints import list_checkpoints

    ws = Workspace.open(shared_workspace())
    assert [m.name for m in list_checkpoints(ws.checkpoints)] == ["at-student", "kd-student", "teacher"]
    assert [a.id for a in list_analyses(ws)] == [ANALYSIS_ID]


@functools.cache
def shared_workspace() -> Path:
    """Built once per test session (the engine work takes seconds); tests copy it."""
    root = Path(tempfile.mkdtemp(prefix="kdcam-tui-ws-"))
    atexit.register(shutil.rmtree, root, True)
    build_workspace(root / "ws")
    return root / "ws"


def workspace_copy(destination: Path) -> Path:
    """A private copy of the shared workspace a test may change."""
    shutil.copytree(shared_workspace(), destination)
    return destination


@functools.cache
def zoo_workspace() -> Path:
    """Eight models and one analysis of them (once per session, like ``shared_workspace``)."""
    root = Path(tempfile.mkdtemp(prefix="kdcam-tui-zoo-"))
    atexit.register(shutil.rmtree, root, True)
    ws = save_models(root / "ws", ZOO)
    run_analysis(ws, tuple(name for name, role, *_ in ZOO if role == "student"), ZOO_ANALYSIS_ID)
    return root / "ws"
