"""TUI leftovers of issue 15: checkboxes readable without colour, Tab after Escape on visible widgets
only, the queue showing every method and where a job is, and failures told in the form's words."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widget import Widget
from textual.widgets import Checkbox, Label, SelectionList

from engine.api.specs import TrainSpec
from engine.events import Progress
from engine.jobs import JobHandle
from tests.test_tui import text_of, wait_for
from tests.test_tui_fixtures import workspace_copy
from tui.app import KdcamApp
from tui.jobboard import JobRecord
from tui.screens.train import queue_row
from tui.widgets.checklist import CHECKED, UNCHECKED


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return workspace_copy(tmp_path / "ws")


def shown(widget: Widget) -> bool:
    """On screen: laid out with an area, and it and every ancestor displayed and visible."""
    node: Widget | None = widget
    while isinstance(node, Widget):
        if not (node.display and node.visible):
            return False
        node = node.parent if isinstance(node.parent, Widget) else None
    return widget.region.area > 0


async def test_checkboxes_differ_in_shape_not_only_colour(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        methods = app.screen.query_one("#methods", SelectionList)
        first = methods.get_option_at_index(0).value
        methods.deselect(first)
        await pilot.pause()
        lines = [methods.render_line(y).text for y in range(3)]
        assert lines[0].startswith(UNCHECKED) and lines[1].startswith(CHECKED) and lines[2].startswith(CHECKED)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_tab_after_escape_lands_only_on_visible_widgets(workspace: Path, size: tuple[int, int]) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=size) as pilot:
        for key in "123456":
            await pilot.press("escape", key, "escape")
            await pilot.pause()
            for _ in range(10):
                await pilot.press("tab")
                await pilot.pause()
                focused = app.focused
                assert focused is not None and shown(focused), (key, focused)


def test_the_queue_shows_every_method_and_where_the_job_is() -> None:
    spec = TrainSpec(workspace="w", teacher="resnet32x4", student="resnet8x4", methods=("kd", "fitnet", "crd", "dkd"))
    record = JobRecord(JobHandle("job-7", spec), state="running",
                       progress=Progress("job-7", "resnet8x4-fitnet-shapes-s0", 37, 391, "epoch 3/240"))
    job, what, methods, state, where = queue_row(record)
    assert (job, what, methods, state) == ("job-7", "resnet32x4→resnet8x4 on shapes", "kd,fitnet,crd,dkd", "running")
    assert where == "resnet8x4-fitnet-shapes-s0 epoch 3/240 37/391"


async def test_a_failed_export_speaks_of_the_forms_fields_not_cli_flags(workspace: Path) -> None:
    (workspace / "exports" / "mine").mkdir(parents=True)  # a folder kdcam did not write
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        screen = app.screen
        screen.query_one("#out").value = "mine"
        await pilot.pause()
        screen.action_export()
        line = screen.query_one("#export-status .job-line", Label)
        await wait_for(pilot, lambda: "failed" in text_of(line), timeout=30)
        message = text_of(line)
        assert "“folder under exports/”" in message and "“overwrite existing”" in message
        assert "--" not in message


async def test_the_export_overwrite_box_differs_in_shape_not_only_colour(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        box = app.screen.query_one("#overwrite", Checkbox)
        await pilot.pause()
        assert box.render_line(0).text.startswith(f"{UNCHECKED} overwrite existing")
        box.value = True
        await pilot.pause()
        assert box.render_line(0).text.startswith(f"{CHECKED} overwrite existing")
