"""The frame every kdcam screen shares: header, body, footer, a hook for job events, and a
safety net: a background read that fails is shown, never allowed to close the app."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Header
from textual.worker import Worker, WorkerState

from engine.events import JobEvent
from tui.host import Host
from tui.jobboard import JobRecord
from tui.modes import GLOBAL_BINDINGS
from tui.widgets.keybar import KeyBar


class JobAware:
    """Mixin for screens and dialogs that want every engine event while they are alive."""

    app: Any

    def on_mount(self) -> None:
        cast(Host, self.app).add_watcher(self)

    def on_unmount(self) -> None:
        cast(Host, self.app).remove_watcher(self)

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        """Called on the UI thread for every engine event; override to react."""


class KdcamScreen(JobAware, Screen[None]):
    """A top-level screen (one per app mode).

    Workers of a screen are started with ``exit_on_error=False``: an unexpected error while
    reading the workspace becomes a notification and the screen stays usable.
    """

    SCREEN_TITLE: ClassVar[str] = ""

    @property
    def kdcam(self) -> Host:
        return cast(Host, self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield from self.compose_body()
        yield KeyBar(self.BINDINGS, GLOBAL_BINDINGS)

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def build_spec(self) -> Any:
        """The job spec the screen's form describes; ``ValueError`` names a field that is wrong."""
        raise NotImplementedError

    def submit_form(self) -> JobRecord | None:
        """Submit the form's spec, or show why it cannot be (in ``#form-error``) and return None."""
        from textual.widgets import Label

        error = self.query_one("#form-error", Label)
        try:
            spec = self.build_spec()
        except ValueError as exc:
            error.update(Text(str(exc)))  # the message quotes what was typed: text, not markup
            return None
        error.update("")
        return self.kdcam.submit(spec)

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "kdcam"
        self.sub_title = self.SCREEN_TITLE

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify(f"{type(error).__name__}: {error}", title=f"{self.SCREEN_TITLE}: reading failed",
                        severity="error", timeout=10)
