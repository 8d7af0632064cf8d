"""The key bar at the bottom of every screen: one line of text, built once.

Textual's Footer rebuilds a widget per key each time a screen becomes active, which made
switching screens cost hundreds of widgets; the bindings here never change, so one Static
rendered at mount is enough.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Static


def key_hints(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    hints = []
    for binding in bindings:
        if isinstance(binding, Binding) and binding.show and binding.description:
            hints.append((binding.key_display or binding.key.split(",")[0], binding.description))
    return hints


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $footer-background; color: $footer-foreground; }
    """

    def __init__(self, screen_bindings: Iterable[BindingType], app_bindings: Iterable[BindingType]) -> None:
        super().__init__()
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, description in [*key_hints(screen_bindings), *key_hints(app_bindings), ("^p", "palette")]:
            text.append(f" {key}", style="bold #ffa62b")
            text.append(f" {description} ")
        self.update(text)
