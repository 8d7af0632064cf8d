"""The TUI as its users expect it: it follows the workspace, finds every action by name, keeps the
board focused and its sort visible, cycles CAM methods across analyses, and folds -last twins."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable, Label, Select, SelectionList

from engine.api.liveness import identity
from tests.test_tui import SIZE, text_of, wait_for
from tests.test_tui_fixtures import ANALYSIS_ID, workspace_copy
from tui.app import KdcamApp
from tui.rows.browser import OUTCOMES


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return workspace_copy(tmp_path / "ws")


def twin(workspace: Path, name: str) -> None:
    """``NAME-last`` beside ``NAME``, as the trainer saves the final epoch."""
    store = workspace / "checkpoints"
    shutil.copy(store / f"{name}.safetensors", store / f"{name}-last.safetensors")
    meta = json.loads((store / f"{name}.json").read_text())
    (store / f"{name}-last.json").write_text(json.dumps({**meta, "name": f"{name}-last"}))


def epoch_line(epoch: int) -> str:
    return json.dumps({"epoch": epoch, "epochs": 10, "losses": {"ce": 1.0 / epoch}, "train_acc": 0.5,
                       "test_acc": 0.25, "lr": 0.05, "images_per_s": 100.0, "elapsed": float(epoch)}) + "\n"


async def test_a_headless_run_appears_live_and_is_followed(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        epochs = screen.query_one("#epoch-table", DataTable)
        run = workspace / "runs" / "20260101-000000-000-vgg8-kd-headless"  # what `kdcam train` writes
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"name": "vgg8-kd-headless", "role": "student", "method": "kd",
                                                     "spec": {"epochs": 10}}))
        (run / "status.json").write_text(json.dumps({"state": "running", **identity()}))
        (run / "events.jsonl").write_text(epoch_line(1))
        await wait_for(pilot, lambda: epochs.row_count == 1, timeout=3)
        assert run.name in text_of(screen.query_one("#run-title", Label))
        (run / "events.jsonl").write_text(epoch_line(1) + epoch_line(2))  # the next epoch, live
        await wait_for(pilot, lambda: epochs.row_count == 2, timeout=3)


async def test_the_palette_runs_any_screens_action_by_name(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        board = app.screen
        await wait_for(pilot, lambda: board.query_one("#board", DataTable).row_count == 2)
        for query, check in (("sort by KL", lambda: board.board_view.sort_key == "kl"),
                             ("split by who", lambda: board.board_view.split_by_outcome),
                             ("checkpoints twins", lambda: app.current_mode == "checkpoints"
                              and app.screen.show_twins)):  # another screen's action: shown, then run
            await pilot.press("ctrl+p")
            await pilot.press(*query)
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_for(pilot, check, timeout=10)
        commands = [c.title for c in app.get_system_commands(app.screen)]  # on Checkpoints now
        for action in ("Import", "Delete", "Train: Queue run", "Train: Cancel job", "Train: Resume run",
                       "Browser: CAM method", "Browser: Class filter", "Leaderboard: Export analysis",
                       "Analyze: Start analysis", "Export: Export"):
            assert action in commands, action


async def test_leaderboard_is_focused_on_arrival_and_marks_its_sort(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#board", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert app.focused is table
        await pilot.press("right", "right", "s")  # the cursor's column: "acc %"
        headers = [column.label.plain for column in table.columns.values()]
        assert headers[2] == "acc %▼" and all(not h.endswith(("▼", "▲")) for i, h in enumerate(headers) if i != 2)
        await pilot.press("s")
        assert table.columns[list(table.columns)[2]].label.plain == "acc %▲"
        assert table.fixed_columns == 1


async def test_m_cycles_to_a_sibling_analysis_with_another_cam_method(workspace: Path) -> None:
    sibling = workspace / "analyses" / "fixture-gradcampp"
    shutil.copytree(workspace / "analyses" / ANALYSIS_ID, sibling)
    results = json.loads((sibling / "results.json").read_text())
    results["cam"]["method"] = "gradcam++"
    (sibling / "results.json").write_text(json.dumps(results))
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        app.selected_analysis = ANALYSIS_ID
        await pilot.press("5")
        screen = app.screen
        await wait_for(pilot, lambda: screen.data is not None and screen.data.method == "gradcam")
        await pilot.press("m")
        await wait_for(pilot, lambda: screen.data.method == "gradcam++", timeout=10)
        await pilot.press("m")
        await wait_for(pilot, lambda: screen.data.method == "gradcam", timeout=10)


async def test_class_picker_and_a_filter_matching_nothing(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        screen = app.screen
        images = screen.query_one("#image-list", DataTable)
        await wait_for(pilot, lambda: images.row_count == 12)
        await pilot.press("c")
        await pilot.press(*"striped-d", "enter")  # typed part of the name picks the class
        data = screen.data
        await wait_for(pilot, lambda: screen.filters.class_filter == 2)
        assert images.row_count == int((data.per_image["labels"] == 2).sum()) > 0
        assert screen.query_one("#panel-images").display
        empty = next(f for k, outcome, degenerate in itertools.product(range(4), OUTCOMES, (False, True))
                     if not (f := replace(screen.filters, class_filter=k, outcome=outcome,
                                          degenerate_only=degenerate)).rows(data))
        screen.filters = empty
        await pilot.pause(0.1)
        assert images.row_count == 0 and not screen.query_one("#panel-images").display
        assert "no image matches" in text_of(screen.query_one("#panel-title", Label))


async def test_last_twins_are_folded_and_not_preselected(workspace: Path) -> None:
    twin(workspace, "teacher")
    twin(workspace, "kd-student")
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#checkpoints", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)  # five checkpoints, three groups
        await pilot.press("l")
        assert table.row_count == 5
        await pilot.press("3")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#students", SelectionList).option_count == 4)
        assert screen.query_one("#teacher", Select).value == "teacher"
        assert sorted(screen.query_one("#students", SelectionList).selected) == ["at-student", "kd-student"]


async def test_train_form_defaults_to_the_cli_and_validates_as_you_type(workspace: Path) -> None:
    from textual.widgets import Input

    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        spec = screen.build_spec()
        assert (spec.dataset, spec.recipe, spec.width, spec.seed) == ("shapes", "demo", None, 0)
        screen.query_one("#lr", Input).value = "-1"
        await pilot.pause(0.1)
        assert "learning rate: must be positive" in text_of(screen.query_one("#form-error", Label))
        screen.query_one("#lr", Input).value = "0.01"
        screen.query_one("#options", Input).value = "kd.temperature=2"
        screen.query_one("#batch_size", Input).value = "32"
        await pilot.pause(0.1)
        assert text_of(screen.query_one("#form-error", Label)).strip() == ""
        spec = screen.build_spec()
        assert spec.lr == 0.01 and spec.batch_size == 32 and spec.method_options == {"kd": {"temperature": 2.0}}
