"""Files a screen could not read, each with the reader's reason (which names the file).

Hidden while there are none, so a healthy workspace looks exactly as before; a broken
file is listed here instead of crashing the screen or silently disappearing.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import var
from textual.widgets import Static


class Problems(Static):
    DEFAULT_CSS = "Problems { height: auto; max-height: 6; width: 1fr; color: $error; }"

    #: one line per unreadable file: (what, why)
    entries: var[tuple[tuple[str, str], ...]] = var(())

    def on_mount(self) -> None:
        self.display = bool(self.entries)

    def show(self, entries: Sequence[tuple[str, str]]) -> None:
        self.entries = tuple(entries)

    def watch_entries(self, entries: tuple[tuple[str, str], ...]) -> None:
        text = Text()
        for i, (what, why) in enumerate(entries):
            if i:
                text.append("\n")
            text.append(f"⚠ {what} unreadable: ", style="bold")
            text.append(why)
        self.update(text)
        self.display = bool(entries)
