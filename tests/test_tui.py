"""kdcam-tui driven like a user would (Textual's Pilot), over workspaces made by the engine:
each screen's main path, with assertions on what the screen shows."""

from __future__ import annotations

import asyncio
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static

from tests.test_tui_fixtures import ANALYSIS_ID, DATASET, foreign_checkpoint, workspace_copy
from tui.app import KdcamApp
from tui.rows.checkpoints import COLUMNS
from tui.rows.leaderboard import COLUMNS as BOARD_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SIZE = (120, 40)


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the app run until ``condition`` holds (engine jobs and file workers are asynchronous)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        await pilot.pause(0.05)


def column(table: DataTable, index: int) -> list[str]:
    return [str(table.get_row_at(r)[index]) for r in range(table.row_count)]


def text_of(widget: Static | Label) -> str:
    """What a Static shows, as plain text (its content may be markup or a Rich renderable)."""
    console = Console(width=400, file=io.StringIO(), record=True)
    content = widget.content
    console.print(Text.from_markup(content) if isinstance(content, str) else content)
    return console.export_text()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return workspace_copy(tmp_path / "ws")


async def test_checkpoints_import_rename_delete(workspace: Path, tmp_path: Path) -> None:
    foreign = foreign_checkpoint(tmp_path / "cifar_model.pt")
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#checkpoints", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        assert column(table, 0) == ["at-student", "kd-student", "teacher"]
        assert "student, method at, teacher teacher" in text_of(app.screen.query_one("#inspect-body", Static))

        # A wrong path is reported inside the dialog, which stays open.
        await pilot.press("i")
        dialog = app.screen
        dialog.query_one("#path", Input).value = str(tmp_path / "missing.pt")
        await pilot.press("enter")
        assert "no such file" in text_of(dialog.query_one("#error", Label))
        assert app.screen is dialog

        # The real import runs on the engine thread and the table shows the new checkpoint.
        dialog.query_one("#path", Input).value = str(foreign)
        dialog.query_one("#name", Input).value = "imported-vgg8"
        dialog.query_one("#dataset", Input).value = DATASET
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not dialog, timeout=60)
        await wait_for(pilot, lambda: "imported-vgg8" in column(table, 0))
        row = column(table, 0).index("imported-vgg8")
        cells = table.get_row_at(row)
        assert cells[COLUMNS.index("arch")] == "vgg8 ×0.125" and cells[COLUMNS.index("role")] == "imported"

        # Rename, then delete with confirmation.
        table.move_cursor(row=row)
        await pilot.press("n")
        app.screen.query_one("#name", Input).value = "renamed-vgg8"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "renamed-vgg8" in column(table, 0) and "imported-vgg8" not in column(table, 0))
        table.move_cursor(row=column(table, 0).index("renamed-vgg8"))
        await pilot.press("d")
        await pilot.press("n")  # "no" keeps it
        await pilot.pause(0.2)
        assert "renamed-vgg8" in column(table, 0)
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: "renamed-vgg8" not in column(table, 0))
        assert not (workspace / "checkpoints" / "renamed-vgg8.safetensors").exists()


async def test_inspect_lists_taps(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#checkpoints", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        body = app.screen.query_one("#inspect-body", Static)
        assert "vgg8 ×0.125, 4 classes" in text_of(body)
        await pilot.press("t")
        await wait_for(pilot, lambda: "stage5" in text_of(body), timeout=60)


async def test_help_lists_every_screen_and_binding(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        from tui.screens.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        shown = text_of(app.screen.query_one("#help-table", Static))
        for words in ("Checkpoints (1)", "Train (2)", "Leaderboard (4)", "Browser (5)", "Export (6)",
                      "Target true/pred", "Split by who was right", "Queue run", "Import"):
            assert words in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_train_form_turns_a_seed_list_into_a_seed_group(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        seeds = screen.query_one("#seed", Input)
        assert screen.build_spec().seeds == () and screen.build_spec().seed == 0
        seeds.value = "3"
        assert (screen.build_spec().seed, screen.build_spec().seeds) == (3, ())
        seeds.value = "0, 1,2"
        assert screen.build_spec().seeds == (0, 1, 2)
        for bad in ("1,1", "-1", "a"):
            seeds.value = bad
            with pytest.raises(ValueError, match="distinct whole numbers"):
                screen.build_spec()


async def test_train_starts_live_and_cancels(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        for field, value in (("dataset", DATASET), ("teacher", "vgg8"), ("student", "vgg8"), ("width", "0.125"),
                             ("epochs", "200")):
            screen.query_one(f"#{field}", Input).value = value
        await pilot.press("s")
        record = next(iter(app.board.records.values()))
        assert record.spec.epochs == 200 and record.spec.width == 0.125
        # Epochs arrive live: the table fills and the curves get points.
        epochs = screen.query_one("#epoch-table", DataTable)
        await wait_for(pilot, lambda: epochs.row_count >= 1, timeout=90)
        assert str(epochs.get_row_at(0)[0]).startswith("1/")

        # Keys pressed while the job runs are handled promptly: the time from the key reaching
        # the app to its action switching the screen. Pilot.press would wait for an idle CPU,
        # which never comes while training, so keys go to the driver directly; the median of
        # ten presses keeps one unlucky moment on a noisy machine from deciding.
        switches: list[tuple[str, float]] = []
        switch_mode = app.switch_mode

        def timed_switch(mode: str):  # type: ignore[no-untyped-def]
            result = switch_mode(mode)
            switches.append((mode, time.perf_counter()))
            return result

        app.switch_mode = timed_switch  # type: ignore[method-assign]
        latencies = []
        for key, mode in (("1", "checkpoints"), ("2", "train")) * 5:
            before = len(switches)
            start = time.perf_counter()
            app._driver.send_message(events.Key(key, key))
            while len(switches) == before and time.perf_counter() - start < 5:
                await asyncio.sleep(0.001)
            assert [shown for shown, _ in switches[before:]] == [mode], f"key {key!r} did not show {mode} within 5 s"
            latencies.append(switches[-1][1] - start)
            await asyncio.sleep(0.3)  # a person's pace: each key is measured on its own
        assert app.current_mode == "train"
        assert statistics.median(latencies) < 0.1, latencies
        await pilot.press("2")  # and coming back loses nothing
        assert app.screen is screen and epochs.row_count >= 1

        await pilot.press("x")
        await wait_for(pilot, lambda: record.state == "cancelled", timeout=60)
        await pilot.pause(0.1)
        assert column(screen.query_one("#jobs", DataTable), 3) == ["cancelled"]


@pytest.mark.slow
async def test_analyze_runs_and_opens_the_leaderboard(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#students").option_count == 2)
        assert sorted(screen.query_one("#students").selected) == ["at-student", "kd-student"]
        screen.query_one("#n", Input).value = "8"
        screen.query_one("#target", Input).value = "own"
        await pilot.press("s")
        record = next(iter(app.board.records.values()))
        assert record.spec.n == 8 and record.spec.target == "own" and record.spec.dataset == DATASET
        await wait_for(pilot, lambda: app.current_mode == "leaderboard", timeout=120)
        board = app.screen.query_one("#board", DataTable)
        await wait_for(pilot, lambda: "target own" in text_of(app.screen.query_one("#analysis-bar", Label)))
        assert board.row_count == 2 and app.selected_analysis != ANALYSIS_ID


async def test_leaderboard_rows_sort_and_split(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#board", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert sorted(column(table, 0)) == ["at-student", "kd-student"]
        assert ANALYSIS_ID in text_of(app.screen.query_one("#analysis-bar", Label)) or \
            app.screen.query_one("#analysis").value == ANALYSIS_ID

        pearson = list(BOARD_COLUMNS).index("Pearson")
        table.cursor_coordinate = table.cursor_coordinate._replace(column=pearson)
        await pilot.press("s")
        best_first = [float(v.split("±")[0]) for v in column(table, pearson)]
        assert best_first == sorted(best_first, reverse=True)
        await pilot.press("s")
        assert [float(v.split("±")[0]) for v in column(table, pearson)] == sorted(best_first)

        await pilot.press("w")
        assert table.row_count == 2 * 5
        assert "both correct" in " ".join(column(table, 0))


async def test_browser_moves_toggles_and_exports(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        screen = app.screen
        images = screen.query_one("#image-list", DataTable)
        await wait_for(pilot, lambda: images.row_count == 12)
        title = screen.query_one("#panel-title", Label)
        first = text_of(title)
        assert "target true class" in first and "overlay" in first
        await pilot.press("j")
        assert images.cursor_row == 1 and text_of(title) != first
        await pilot.press("k")
        assert images.cursor_row == 0
        captions = [text_of(w) for w in screen.query(".cam-caption")]
        assert [c.split("\n")[0] for c in captions] == ["original", "teacher", "kd-student", "at-student"]

        await pilot.press("o")
        assert "heatmap" in text_of(title)

        # t shows the predicted-class CAM where the analysis computed it (a misclassified image).
        wrong = next(i for i, row in enumerate(screen.rows) if row in screen.data.diagnosis_rows.get("teacher", {}))
        images.move_cursor(row=wrong)
        await pilot.press("t")
        assert "target predicted class" in text_of(title)
        assert "[pred]" in text_of(screen.query(".cam-caption")[1])

        await pilot.press("s")  # least similar first
        pearson = screen.data.per_image["pearson"][0]
        shown = [pearson[r] for r in screen.rows if pearson[r] == pearson[r]]
        assert shown == sorted(shown)

        await pilot.press("e")
        panels = workspace / "exports" / "panels"
        await wait_for(pilot, lambda: panels.is_dir() and any(panels.glob("*.png")))


@pytest.mark.slow
async def test_export_writes_report_and_shows_path(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#analysis").value == ANALYSIS_ID)
        await pilot.press("e")
        result = screen.query_one("#export-result", Static)
        await wait_for(pilot, lambda: "written" in text_of(result), timeout=120)
        assert (workspace / "exports" / ANALYSIS_ID / "report.html").is_file()
        assert str(workspace / "exports" / ANALYSIS_ID) in text_of(result)


async def test_engine_failure_is_a_notification_and_the_app_keeps_running(workspace: Path) -> None:
    app = KdcamApp(workspace=str(workspace))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.query_one("#teacher", Input).value = "no-such-architecture"
        await pilot.press("s")
        record = next(iter(app.board.records.values()))
        await wait_for(pilot, lambda: record.state == "failed", timeout=60)
        await pilot.pause(0.1)
        assert any("no-such-architecture" in str(n.message) for n in app._notifications)
        await pilot.press("1")
        assert app.current_mode == "checkpoints"


def test_first_screen_is_ready_without_torch(tmp_path: Path) -> None:
    """In a fresh interpreter: torch is not imported when the first screen is ready."""
    code = (
        "import asyncio, sys\n"
        "from tui.app import KdcamApp\n"
        "async def main():\n"
        f"    app = KdcamApp(workspace={str(tmp_path)!r})\n"
        "    async with app.run_test(size=(80, 24)) as pilot:\n"
        "        await pilot.pause(0.3)\n"
        "        print(type(app.screen).__name__, 'torch' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CheckpointsScreen", "False"]


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are a Linux feature")
def test_engine_thread_and_the_threads_it_starts_yield_the_cpu_to_the_ui() -> None:
    import os
    import threading

    from tui.engine_thread import yield_to_ui

    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: dict[str, int] = {}

    def engine() -> None:
        yield_to_ui()
        seen["engine"] = priority()
        worker = threading.Thread(target=lambda: seen.setdefault("worker", priority()))  # like torch's pool
        worker.start()
        worker.join()

    thread = threading.Thread(target=engine)
    thread.start()
    thread.join()
    ui = priority()
    assert seen["engine"] > ui and seen["worker"] > ui, (seen, ui)
