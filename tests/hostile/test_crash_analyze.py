"""An analysis killed (SIGKILL) at many moments never leaves a half analysis behind: the
listing shows only complete analyses, nothing unreadable, and what the killed process left
is swept on the next open; the same analysis then runs to completion under its name."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from engine.analysis.job import run_analysis_job
from engine.api.analyses import AnalysisFiles, scan_analyses
from engine.api.specs import AnalyzeSpec
from engine.api.workspace import Workspace
from engine.jobs import JobContext
from tests.test_tui_fixtures import DATASET, save_models


def context() -> JobContext:
    return JobContext("crash", lambda event: None, threading.Event())


def spec(ws: Workspace, name: str) -> AnalyzeSpec:
    return AnalyzeSpec(workspace=str(ws.root), teacher="teacher", students=("kd-student", "at-student"),
                       dataset=DATASET, n=12, name=name, batch_size=4, check_images=0, resamples=50)


def leftovers(ws: Workspace) -> list[Path]:
    return [p for p in ws.analyses.iterdir() if p.name.startswith(".")]


def killed(action: object, delay: float) -> None:
    """Run ``action`` in a forked copy of this process (torch already imported) and SIGKILL it after ``delay``."""
    pid = os.fork()
    if pid == 0:
        try:
            action()  # type: ignore[operator]
        finally:
            os._exit(0)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


@pytest.mark.slow
def test_analysis_killed_at_random_moments_leaves_only_complete_analyses(tmp_path: Path) -> None:
    ws = save_models(tmp_path)
    started = time.perf_counter()
    run_analysis_job(spec(ws, "reference"), context())
    duration = time.perf_counter() - started
    rng = random.Random(3)
    hit, last_interrupted = 0, None
    for attempt in range(6):
        name = f"killed-{attempt}"
        killed(lambda name=name: run_analysis_job(spec(ws, name), context()), rng.uniform(0.05, duration))
        infos, unreadable = scan_analyses(ws)
        assert unreadable == [], unreadable
        listed = {info.id for info in infos}
        for analysis_id in listed:  # whatever is listed opens and validates completely
            files = AnalysisFiles.open(ws, analysis_id)
            assert files.images.shape[0] == 12 and files.maps("teacher").shape[0] == 12
        if name not in listed:
            hit, last_interrupted = hit + 1, name
        for path in leftovers(ws):  # as old as a sweep requires, without waiting
            past = time.time() - 120
            os.utime(path, (past, past), follow_symlinks=False)
        Workspace.open(ws.root).ensure()  # the next command that opens the workspace for writing
        assert leftovers(ws) == []
    assert hit >= 2 and last_interrupted, f"only {hit} of 6 kills interrupted an analysis"
    run_analysis_job(spec(ws, last_interrupted), context())  # the name is free again: it runs to completion
    assert last_interrupted in {info.id for info in scan_analyses(ws)[0]}
