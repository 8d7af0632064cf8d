"""The app's modes (one per screen) and its global keys: a registry both the app and the
help screen read, so neither screens nor help import the app (no import circle)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding, BindingType
from textual.screen import Screen


@dataclass(frozen=True)
class Mode:
    name: str
    key: str
    label: str
    target: str  # "module:Class", imported when the screen is first shown

    def screen_class(self) -> type[Screen[Any]]:
        module_name, _, class_name = self.target.partition(":")
        screen_class: type[Screen[Any]] = getattr(importlib.import_module(module_name), class_name)
        return screen_class


MODES: tuple[Mode, ...] = (
    Mode("checkpoints", "1", "Checkpoints", "tui.screens.checkpoints:CheckpointsScreen"),
    Mode("train", "2", "Train", "tui.screens.train:TrainScreen"),
    Mode("analyze", "3", "Analyze", "tui.screens.analyze:AnalyzeScreen"),
    Mode("leaderboard", "4", "Leaderboard", "tui.screens.leaderboard:LeaderboardScreen"),
    Mode("browser", "5", "Browser", "tui.screens.browser:BrowserScreen"),
    Mode("export", "6", "Export", "tui.screens.export:ExportScreen"),
)
MODE_NAMES: tuple[str, ...] = tuple(mode.name for mode in MODES)

GLOBAL_BINDINGS: list[BindingType] = [
    *(Binding(mode.key, f"show('{mode.name}')", mode.label) for mode in MODES),
    Binding("question_mark", "help", "Help", key_display="?"),
    Binding("q", "quit", "Quit"),
    Binding("escape", "leave_field", "Leave the field (keys work again)", show=False),
]
