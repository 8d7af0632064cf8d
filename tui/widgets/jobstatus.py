"""The state of one submitted job as a line of text and a progress bar."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar

from tui.format import in_form_terms
from tui.jobboard import JobRecord


class JobStatus(Vertical):
    DEFAULT_CSS = "JobStatus { height: auto; } JobStatus Label { width: 1fr; }"

    def compose(self) -> ComposeResult:
        yield Label("", classes="job-line")
        yield ProgressBar(show_eta=False, classes="job-bar")

    def show(self, record: JobRecord | None, idle: str = "") -> None:
        line, bar = self.query_one(".job-line", Label), self.query_one(".job-bar", ProgressBar)
        # An idle bar would animate (indeterminate); it is hidden until a job reports progress.
        bar.display = record is not None and record.progress is not None
        if record is None:
            line.update(idle)
            return
        progress = record.progress
        if record.state == "failed":
            error = in_form_terms(record.error or "", record.spec.kind)
            line.update(Text.assemble((f"{record.title} failed:", "red"), f" {error}"))  # errors quote files
        elif record.state != "running" or progress is None:
            line.update(Text(f"{record.title}: {record.state}"))
        else:
            line.update(Text(f"{record.title}: {progress.phase} {progress.done}/{progress.total} {progress.message}"))
        if progress is not None:
            bar.update(total=max(progress.total, 1), progress=progress.done if record.state != "finished"
                       else progress.total)
        elif record.state == "finished":
            bar.update(total=1, progress=1)
