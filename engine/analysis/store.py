"""Removing an analysis (``analyses/ID``) as an engine job, shared by ``kdcam analyses delete`` and the TUI."""

from __future__ import annotations

import os
import shutil

from engine.api.analyses import analysis_dir
from engine.api.atomic import make_directory_temp
from engine.api.specs import DeleteAnalysisSpec
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from engine.jobs import JobContext


def run_delete_analysis(spec: DeleteAnalysisSpec, ctx: JobContext) -> str:
    """The directory is first renamed to a hidden temporary (listings skip it at once, and a kill
    mid-delete leaves only what the workspace sweep removes), then removed."""
    path = analysis_dir(Workspace.open(spec.workspace), spec.analysis)
    if path.is_symlink() or not path.is_dir():
        raise KdcamError(f"no analysis {spec.analysis!r} in {path.parent} (see kdcam analyses list)")
    doomed = make_directory_temp(path)
    os.replace(path, doomed)  # onto the empty temporary: one rename, same file system
    shutil.rmtree(doomed)
    return spec.analysis
