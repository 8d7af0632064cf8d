"""What a screen needs from the app it runs in: a small protocol, so screens never import the app."""

from __future__ import annotations

from typing import Any, Protocol

from engine.api.specs import Spec
from engine.api.workspace import Workspace
from tui.jobboard import JobBoard, JobRecord


class Watcher(Protocol):
    def job_event(self, event: Any, record: JobRecord | None) -> None: ...


class Host(Protocol):
    """The app as screens see it: the workspace, the job board, and the shared selection."""

    workspace: Workspace
    board: JobBoard
    selected_analysis: str | None

    def submit(self, spec: Spec) -> JobRecord: ...

    def action_show(self, mode: str) -> None: ...

    def add_watcher(self, watcher: Watcher) -> None: ...

    def remove_watcher(self, watcher: Watcher) -> None: ...
