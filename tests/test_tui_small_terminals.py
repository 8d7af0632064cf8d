"""Screens at the sizes people use (80x24, 120x40, 200x60) with a demo-sized zoo (twins included):
every card the browser shows is whole and every model's card is reached by keys (n/p page through
the models); leaderboard names never look alike and take the room a wide terminal has."""

from __future__ import annotations

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.test_tui import text_of, wait_for
from tests.test_tui_fixtures import ZOO, zoo_workspace
from tui.app import KdcamApp
from tui.rows.browser import panel_layout
from tui.rows.leaderboard import name_width
from tui.screens.browser import BrowserScreen, CamCard

STUDENTS = [name for name, role, *_ in ZOO if role == "student"]


def shown_cards(screen: BrowserScreen) -> list[CamCard]:
    return [card for card in screen.query(CamCard) if card.display]


def assert_whole(pilot: Pilot, screen: BrowserScreen) -> None:
    """Every shown card lies inside the screen, above the key bar, and inside the panel that holds it
    (a card scrolled or clipped out of the panel's region is not whole)."""
    width, height = pilot.app.size
    keybar = screen.query_one("KeyBar").region
    panel = screen.query_one("#panel").region
    for card in shown_cards(screen):
        region = card.region
        assert region.area == card.size.width * card.size.height > 0, card
        assert Region(0, 0, width, keybar.y).contains_region(region), (region, keybar)
        assert panel.contains_region(region), (region, panel)
        assert screen.find_widget(card).visible_region == region  # nothing of it is clipped
        assert region.right < width  # off the last column, where an inline image cannot be placed


def titles(screen: BrowserScreen) -> list[str]:
    return [text_of(card.query_one(".cam-caption", Static)).split("\n")[0] for card in shown_cards(screen)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_card_is_whole_and_every_model_is_reached(size: tuple[int, int]) -> None:
    app = KdcamApp(workspace=str(zoo_workspace()))
    async with app.run_test(size=size) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, BrowserScreen)
        await wait_for(pilot, lambda: screen.query_one("#image-list", DataTable).row_count == 12
                       and bool(shown_cards(screen)) and screen.cards_layout is not None)
        await pilot.pause(0.2)
        layout = screen.cards_layout
        assert layout is not None and layout.models == len(ZOO)
        seen: list[str] = []
        for _ in range(layout.pages):
            assert_whole(pilot, screen)
            shown = titles(screen)
            assert shown[0] == "original"  # every page is read against the original
            seen += shown[1:]
            await pilot.press("n")
            await pilot.pause(0.05)
        assert titles(screen)[1:] == seen[: len(titles(screen)) - 1]  # n wraps round to the first page
        assert sorted(seen) == sorted(screen._short_models[name] for name, *_ in ZOO)
        assert len(set(seen)) == len(ZOO)  # twins look different
        await pilot.press("p")
        await pilot.pause(0.05)
        assert titles(screen)[1:] == seen[len(seen) - len(titles(screen)) + 1:]  # p goes back round to the last


async def test_cards_lay_out_again_when_the_terminal_is_resized() -> None:
    app = KdcamApp(workspace=str(zoo_workspace()))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, BrowserScreen)
        await wait_for(pilot, lambda: bool(shown_cards(screen)) and screen.cards_layout is not None)
        before = screen.cards_layout
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: screen.cards_layout != before)
        await pilot.pause(0.2)
        assert screen.cards_layout is not None and screen.cards_layout.paged
        assert_whole(pilot, screen)


@pytest.mark.parametrize(("width", "height", "models", "full", "paged"), [
    (40, 21, 2, False, False),   # 80x24, three cards: compact, two by two
    (80, 37, 2, True, False),    # 120x40, three cards: full size in one row
    (80, 37, 8, False, False),   # 120x40, nine cards: compact, three rows of four
    (40, 21, 8, False, True),    # 80x24, nine cards: compact and paged
    (160, 57, 8, True, False),   # 200x60: all full size
    (10, 5, 8, False, True),     # smaller than a card: one per page, the original a page of its own
])
def test_the_layout_fits_whole_cards(width: int, height: int, models: int, full: bool, paged: bool) -> None:
    layout = panel_layout(width, height, models)
    card_rows = layout.picture_rows + 3
    assert (layout.picture_rows == 10) == full and layout.paged == paged
    assert layout.columns * 20 <= max(width, 20)  # a gap after the last card too
    assert layout.height == layout.rows * card_rows + (1 if paged else 0) <= max(height, card_rows + 1)
    reached = [m for page in range(layout.pages) for m in layout.shown(page) if m is not None]
    assert sorted(reached) == list(range(models))  # every model on some page, once


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_leaderboard_names_stay_apart_and_use_the_room(size: tuple[int, int]) -> None:
    app = KdcamApp(workspace=str(zoo_workspace()))
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#board", DataTable)
        await wait_for(pilot, lambda: table.row_count == len(STUDENTS))
        names = [str(table.get_row_at(r)[0]) for r in range(table.row_count)]
        assert len(set(names)) == len(STUDENTS), names  # kd and its -last twin look different
        assert any(name.endswith("-last") for name in names)
        if size[0] >= 200:
            assert sorted(names) == sorted(STUDENTS)  # whole names where there is room


def test_the_name_column_grows_past_120_columns_up_to_the_longest_name() -> None:
    names = ["a" * 40, "b"]
    assert name_width(80, names) == name_width(120, names) == 14
    assert name_width(130, names) == 24 and name_width(200, names) == 40
    assert name_width(200, ["short"]) == 14
