"""``?``: every key binding of the app and of each screen, in one scrollable table."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.modes import GLOBAL_BINDINGS, MODES


def _rows(bindings: list[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
            key = binding.key_display or binding.key
            rows.append((key, binding.description))
    return rows


def bindings_table() -> Table:
    """All bindings: global first, then one section per screen (keys as shown in the footer)."""
    table = Table(expand=True, show_header=True, header_style="bold", box=None)
    table.add_column("key", style="bold cyan", no_wrap=True, width=12)
    table.add_column("action")
    table.add_row("[b]everywhere[/b]", "")
    for key, description in _rows(GLOBAL_BINDINGS):
        table.add_row(key, description)
    table.add_row("ctrl+p", "command palette: every screen and action by name")
    for mode in MODES:
        table.add_row("", "")
        table.add_row(f"[b]{mode.label}[/b] ({mode.key})", "")
        for row in _rows(list(mode.screen_class().BINDINGS)):
            table.add_row(*row)
    return table


class HelpScreen(ModalScreen[None]):
    """A modal list of every binding; any of escape, ? or q closes it."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static("[b]kdcam-tui — keys[/b]   (escape closes)", id="help-title")
            yield Static(bindings_table(), id="help-table")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
