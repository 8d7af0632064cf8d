"""Screenshots of every screen (pytest-textual-snapshot), compared with the committed SVGs
in tests/__snapshots__/. The workspace is the engine-made fixture with fixed names and dates;
nothing time-dependent is on screen. Update after a deliberate change with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the new SVGs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.test_tui_fixtures import ANALYSIS_ID, shared_workspace
from tui.app import KdcamApp


def until(condition: Callable[[Pilot], bool]) -> Callable[[Pilot], Awaitable[None]]:
    async def run_before(pilot: Pilot) -> None:
        deadline = time.monotonic() + 30
        while not condition(pilot) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.2)

    return run_before


def rows(selector: str, count: int) -> Callable[[Pilot], bool]:
    return lambda pilot: bool(pilot.app.screen.query(selector)) and \
        pilot.app.screen.query_one(selector, DataTable).row_count == count


def browser_drawn(pilot: Pilot) -> bool:
    """The analysis is loaded in the background: ready once its cards exist and show an image, and
    the image list has measured its columns (a DataTable does that when it is next idle, which a busy
    loaded machine delays)."""
    screen = pilot.app.screen
    return getattr(screen, "data", None) is not None and bool(screen.query("CamCard")) and \
        bool(screen.query_one("#panel-images").display) and \
        screen.query_one("#image-list", DataTable).ordered_columns[1].content_width > len("class")


def analysis_selected(pilot: Pilot) -> bool:
    return bool(pilot.app.screen.query("#analysis")) and pilot.app.screen.query_one("#analysis").value == ANALYSIS_ID


SCREENS = {  # name: (keys, ready)
    "checkpoints": ((), rows("#checkpoints", 3)),
    "train": (("2",), lambda pilot: True),
    "analyze": (("3",), lambda pilot: pilot.app.screen.query_one("#students").option_count == 2),
    "leaderboard": (("4",), rows("#board", 2)),
    "browser": (("5",), lambda pilot: rows("#image-list", 12)(pilot) and browser_drawn(pilot)),
    "export": (("6",), analysis_selected),
    "help": (("question_mark",), lambda pilot: True),
}


@pytest.mark.parametrize("screen", SCREENS)
def test_screen_at_120x40(screen: str, snap_compare) -> None:
    keys, ready = SCREENS[screen]

    async def run_before(pilot: Pilot) -> None:
        await until(rows("#checkpoints", 3))(pilot)
        for key in keys:
            await pilot.press(key)
        await until(ready)(pilot)

    assert snap_compare(KdcamApp(workspace=str(shared_workspace())), terminal_size=(120, 40), run_before=run_before)


def test_checkpoints_at_80x24(snap_compare) -> None:
    assert snap_compare(KdcamApp(workspace=str(shared_workspace())), terminal_size=(80, 24),
                        run_before=until(rows("#checkpoints", 3)))


def on_screen(keys: tuple[str, ...], ready: Callable[[Pilot], bool]) -> Callable[[Pilot], Awaitable[None]]:
    async def run_before(pilot: Pilot) -> None:
        await until(rows("#checkpoints", 3))(pilot)
        for key in keys:
            await pilot.press(key)
        await until(ready)(pilot)
        await pilot.pause(0.2)  # the frame that follows the last update

    return run_before


@pytest.mark.parametrize("screen", ["leaderboard", "browser"])
def test_screen_at_80x24(screen: str, snap_compare) -> None:
    """The smallest terminal people use: the first column stays, the rest fits or scrolls."""
    keys, ready = SCREENS[screen]
    assert snap_compare(KdcamApp(workspace=str(shared_workspace())), terminal_size=(80, 24),
                        run_before=on_screen(keys, ready))


def test_leaderboard_at_200x60(snap_compare) -> None:
    """A wide terminal shows whole names and every column."""
    keys, ready = SCREENS["leaderboard"]
    assert snap_compare(KdcamApp(workspace=str(shared_workspace())), terminal_size=(200, 60),
                        run_before=on_screen(keys, ready))
