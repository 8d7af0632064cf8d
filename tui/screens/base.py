"""The frame every kdcam screen shares: header, body, footer, and a hook for job events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Header

from engine.events import JobEvent
from tui.widgets.keybar import KeyBar

if TYPE_CHECKING:
    from tui.app import KdcamApp
    from tui.jobboard import JobRecord


class JobAware:
    """Mixin for screens and dialogs that want every engine event while they are alive."""

    def on_mount(self) -> None:
        self.app.watchers.add(self)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        self.app.watchers.discard(self)  # type: ignore[attr-defined]

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        """Called on the UI thread for every engine event; override to react."""


class KdcamScreen(JobAware, Screen):
    """A top-level screen (one per app mode)."""

    SCREEN_TITLE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        # A new Screen starts with a CSS generation of -1, so Textual re-parses the whole
        # stylesheet (~0.1 s on a small CPU) when it is first shown and again when it is first
        # returned to. Its widgets are styled from the current stylesheet as they mount, so it
        # is current as of now; a later theme change still bumps the app's count and refreshes.
        self._css_update_count = self.app._css_update_count

    @property
    def kdcam(self) -> KdcamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield from self.compose_body()
        yield KeyBar(self.BINDINGS, self.app.BINDINGS)

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
            error.update(str(exc))
            return None
        error.update("")
        return self.kdcam.submit(spec)

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "kdcam"
        self.sub_title = self.SCREEN_TITLE
