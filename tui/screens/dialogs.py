"""Small modal dialogs: confirm, ask for one name, pick one of many, and the checkpoint import form."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static

from engine.api.checkpoints import CheckpointMeta
from engine.api.specs import ImportSpec
from engine.events import Failed, Finished, JobEvent
from tui.host import Host
from tui.jobboard import JobRecord
from tui.screens.base import JobAware


class ConfirmDialog(ModalScreen[bool]):
    """Yes/no; ``y`` confirms, ``n``/``escape`` cancel."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class NameDialog(ModalScreen[str | None]):
    """Ask for a new name (rename); enter accepts, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str) -> None:
        super().__init__()
        self.dialog_title, self.value = title, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.dialog_title, classes="dialog-title")
            yield Input(self.value, id="name")
            yield Label("", id="error", classes="problem")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self.query_one("#error", Label).update("a name is required")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickerDialog(ModalScreen[object]):
    """Pick one of many (classes, analyses) by typing part of its name: the list narrows as you type;
    enter or a click picks the highlighted entry, escape cancels (dismisses with ``CANCELLED``)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    CANCELLED = object()

    def __init__(self, title: str, options: list[tuple[str, object]], current: object = None) -> None:
        """``options``: (label, value); labels are shown as written (class names come from files)."""
        super().__init__()
        self.dialog_title, self.options, self.current = title, options, current
        self.shown: list[tuple[str, object]] = list(options)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.dialog_title, classes="dialog-title")
            yield Input(placeholder="type to filter", id="filter")
            yield OptionList(*(Content(label) for label, _ in self.options), id="choices")

    def on_mount(self) -> None:
        values = [value for _, value in self.options]
        if self.current in values:
            self.query_one("#choices", OptionList).highlighted = values.index(self.current)
        self.query_one("#filter", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        words = event.value.lower().split()
        self.shown = [(label, value) for label, value in self.options if all(w in label.lower() for w in words)]
        choices = self.query_one("#choices", OptionList)
        choices.clear_options()
        choices.add_options([Content(label) for label, _ in self.shown])
        if self.shown:
            choices.highlighted = 0

    def on_input_submitted(self) -> None:
        highlighted = self.query_one("#choices", OptionList).highlighted
        if highlighted is not None and highlighted < len(self.shown):
            self.dismiss(self.shown[highlighted][1])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.shown[event.option_index][1])

    def on_key(self, event: events.Key) -> None:
        """Up and down move in the list while the filter keeps the focus."""
        if event.key in ("up", "down"):
            choices = self.query_one("#choices", OptionList)
            choices.action_cursor_up() if event.key == "up" else choices.action_cursor_down()
            event.stop()

    def action_cancel(self) -> None:
        self.dismiss(self.CANCELLED)


def parse_stats(text: str, what: str) -> tuple[float, ...] | None:
    """'0.5, 0.5, 0.5' -> (0.5, 0.5, 0.5); blank -> None; anything else -> ValueError naming ``what``."""
    text = text.strip()
    if not text:
        return None
    try:
        values = tuple(float(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"{what}: expected numbers separated by commas, got {text!r}") from None
    if len(values) not in (1, 3):
        raise ValueError(f"{what}: give 1 or 3 numbers (one per channel), got {len(values)}")
    return values


class ImportDialog(JobAware, ModalScreen[str | None]):
    """Import a foreign checkpoint. Problems (bad path, unknown layout) show inline, in red,
    and the dialog stays open; on success it closes with the new checkpoint's name."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__()
        self.job_id: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static("Import a checkpoint (.pt .pth .th .safetensors)", classes="dialog-title")
            yield Input(placeholder="path to the checkpoint file", id="path")
            yield Input(placeholder="name in the store (default: file name)", id="name")
            yield Input(placeholder="architecture (default: inferred from the tensors)", id="arch")
            yield Input(placeholder="model class instead: path/to/file.py:ClassName", id="model_def")
            yield Input(placeholder="dataset (e.g. shapes, cifar100)", id="dataset")
            yield Input(placeholder="mean, e.g. 0.507, 0.487, 0.441 (default: dataset's)", id="mean")
            yield Input(placeholder="std, e.g. 0.267, 0.256, 0.276", id="std")
            yield Label("", id="error", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Import (enter)", id="import", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def _value(self, field_id: str) -> str | None:
        return self.query_one(f"#{field_id}", Input).value.strip() or None

    def _show_error(self, message: str) -> None:
        # import errors quote the stranger's file (tensor names) and the typed path: text, not markup
        self.query_one("#error", Label).update(Text(message))

    def on_input_submitted(self) -> None:
        self.start_import()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "import":
            self.start_import()
        else:
            self.dismiss(None)

    def start_import(self) -> None:
        if self.job_id is not None:
            return
        path = self._value("path")
        if path is None:
            self._show_error("path: give the checkpoint file to import")
            return
        given = Path(path).expanduser()
        if not given.exists() and not given.is_symlink():  # a directory or FIFO: the import says what it is
            self._show_error(f"path: no such file {path}")
            return
        try:
            mean = parse_stats(self.query_one("#mean", Input).value, "mean")
            std = parse_stats(self.query_one("#std", Input).value, "std")
        except ValueError as exc:
            self._show_error(str(exc))
            return
        host = cast(Host, self.app)
        spec = ImportSpec(
            workspace=str(host.workspace.root),
            path=str(Path(path).expanduser()), name=self._value("name"), arch=self._value("arch"),
            model_def=self._value("model_def"), dataset=self._value("dataset"), mean=mean, std=std,
        )
        self.job_id = host.submit(spec).job_id
        self.query_one("#error", Label).update("[dim]importing…[/dim]")

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if event.job_id != self.job_id:
            return
        if isinstance(event, Failed):
            self.job_id = None
            self._show_error(event.error)
        elif isinstance(event, Finished):
            result = event.result
            name = result.name if isinstance(result, CheckpointMeta) else None
            self.dismiss(name or self._value("name") or Path(self._value("path") or "").stem)

    def action_cancel(self) -> None:
        self.dismiss(None)
