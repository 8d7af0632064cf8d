"""``kdcam-tui``: the app frame — modes (one per screen), global keys, the engine link.

Screens are Textual modes, so each keeps its state while another is shown. Engine events
arrive on the engine thread and are re-posted into Textual's queue (``post_message`` is
thread-safe); the app folds them into its ``JobBoard`` and hands them to live screens.
"""

from __future__ import annotations

import argparse
import threading
import weakref
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen

from engine.api.results import DemoResult
from engine.api.specs import DemoSpec, Spec
from engine.api.workspace import Workspace
from engine.events import Cancelled, Failed, Finished, JobEvent, Progress, Started
from engine.jobs import JobRunner
from tui import modes
from tui.engine_thread import yield_to_ui
from tui.format import in_form_terms
from tui.host import Watcher
from tui.jobboard import EngineEvent, JobBoard, JobRecord
from tui.modes import GLOBAL_BINDINGS, Mode

PROGRESS_INTERVAL_S = 0.1


def _screen_factory(mode: Mode) -> Callable[[], Screen[Any]]:
    def build() -> Screen[Any]:
        return mode.screen_class()()

    return build


class KdcamApp(App[None]):
    """kdcam's terminal UI over one workspace."""

    CSS_PATH = Path(__file__).with_name("kdcam.tcss")  # absolute: subclasses may live anywhere
    TITLE = "kdcam"
    MODES = {mode.name: _screen_factory(mode) for mode in modes.MODES}
    BINDINGS = GLOBAL_BINDINGS

    def __init__(self, workspace: str | None = None, demo: bool = False, runner: JobRunner | None = None) -> None:
        super().__init__()
        self.workspace = Workspace.open(workspace).ensure()
        self.demo = demo
        self.board = JobBoard()
        self.watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()
        # Selections shared between screens (the analysis the leaderboard and browser show).
        self.selected_analysis: str | None = None
        self._runner = runner
        self._unsubscribe: Callable[[], None] | None = None
        # Progress arrives every batch: the engine thread keeps the latest per job and posts one
        # message per UI interval, so the UI's queue never fills with stale progress.
        self._progress_lock = threading.Lock()
        self._pending_progress: dict[str, Progress] = {}

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every toast shows its message as written, never as markup (``markup`` is ignored).

        Messages quote names, ids, paths and error texts that come from workspace files; as markup a
        stranger's ``[/]`` crashed the app from inside a toast, where nothing can catch it, and even
        kdcam's own "[ and ] switch runs" lost its brackets. Screens call ``Widget.notify``, which
        passes ``markup=True`` explicitly, hence the override rather than a default."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # -- engine link -------------------------------------------------------------------
    @property
    def runner(self) -> JobRunner:
        if self._runner is None:
            self._runner = JobRunner()
        if self._unsubscribe is None:
            self._unsubscribe = self._runner.subscribe(self._from_engine)
        return self._runner

    def _from_engine(self, event: JobEvent) -> None:
        """Engine thread: hand the event to the UI thread without waiting for it."""
        if isinstance(event, Started):
            yield_to_ui()
        if isinstance(event, Progress):
            with self._progress_lock:
                first = not self._pending_progress
                self._pending_progress[event.job_id] = event
            if first:
                self.call_later(self.set_timer, PROGRESS_INTERVAL_S, self._flush_progress)
            return
        self.post_message(EngineEvent(event))

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def submit(self, spec: Spec) -> JobRecord:
        """Queue a job on the engine thread; its events update ``self.board``."""
        return self.board.add(self.runner.submit(spec))

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        record = self.board.apply(event)
        if record is not None:
            if isinstance(event, Failed):
                self.notify(in_form_terms(event.error, record.spec.kind), title=f"{record.title} failed",
                            severity="error", timeout=10)
            elif isinstance(event, Cancelled):
                self.notify(event.message, title=record.title, severity="warning")
            elif isinstance(event, Finished) and isinstance(record.spec, DemoSpec):
                self.demo_finished(event.result)
            elif isinstance(event, Finished):
                self.notify("done", title=record.title)
        for watcher in list(self.watchers):
            watcher.job_event(event, record)

    def _flush_progress(self) -> None:
        with self._progress_lock:
            pending, self._pending_progress = self._pending_progress, {}
        for event in pending.values():
            record = self.board.apply(event)
            for watcher in list(self.watchers):
                watcher.job_event(event, record)

    def demo_finished(self, result: Any) -> None:
        """The demo workspace is populated: show its analysis on the leaderboard."""
        if isinstance(result, DemoResult) and result.analyses:
            self.selected_analysis = result.analyses[0].id
        self.notify("every screen is populated: 4 leaderboard, 5 browser, 6 export", title="demo ready",
                    timeout=15)
        self.action_show("leaderboard")

    # -- navigation --------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.demo:
            self.switch_mode("train")
            self.submit(DemoSpec(workspace=str(self.workspace.root)))
        else:
            self.switch_mode("checkpoints")

    def action_show(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_leave_field(self) -> None:
        """Escape out of a form field so that single-key bindings reach the screen again."""
        self.screen.set_focus(None)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every screen, and every action of every screen by its name: the shown screen's first, then
        the others' (picking one shows its screen and runs it there)."""
        yield from super().get_system_commands(screen)
        for mode in modes.MODES:
            yield SystemCommand(f"Go to {mode.label}", f"show the {mode.label.lower()} screen (key {mode.key})",
                                lambda name=mode.name: self.action_show(name))
        yield SystemCommand("Help", "every key binding (key ?)", self.action_help)
        current = next((m for m in modes.MODES if m.name == self.current_mode), None)
        ordered = [current] if current is not None else []
        for mode in [*ordered, *(m for m in modes.MODES if m is not current)]:
            for binding in mode.screen_class().BINDINGS:
                if isinstance(binding, Binding) and binding.description:
                    where = "" if mode is current else f"{mode.label}: "
                    yield SystemCommand(f"{where}{binding.description}",
                                        f"{mode.label} screen, key {binding.key_display or binding.key}",
                                        partial(self.run_on_screen, mode.name, binding.action))

    def run_on_screen(self, mode: str, action: str) -> None:
        """Show ``mode``'s screen, then run ``action`` there (once the switch has happened)."""
        self.action_show(mode)

        async def run() -> None:
            await self.run_action(action, self.screen)

        self.call_later(run)

    def on_unmount(self) -> None:
        if self._runner is not None:
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._runner.shutdown(cancel_running=True, timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdcam-tui", description="kdcam's terminal UI over a workspace.")
    parser.add_argument("--workspace", "-w", default=".", help="workspace directory (default: current directory)")
    parser.add_argument("--demo", action="store_true",
                        help="build a demo workspace on the embedded shapes dataset, training live")
    args = parser.parse_args(argv)
    prepare_terminal()
    KdcamApp(workspace=args.workspace, demo=args.demo).run()
    return 0


def prepare_terminal() -> None:
    """The terminal is asked about graphics support (sixel, kitty) and its cell size once;
    that only works before Textual owns stdin, so it happens here, not in the browser screen."""
    from tui.widgets.picture import detect

    detect()


if __name__ == "__main__":
    raise SystemExit(main())
