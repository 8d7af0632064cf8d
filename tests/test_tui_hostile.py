"""kdcam-tui on a workspace whose files were hand-edited, truncated or written by something else
(issue 9): the app keeps running on every screen, shows which file is wrong, and writes nothing.

One app run per kind of file (checkpoint metadata, run records, results.json, analysis arrays);
each run's workspace holds every corruption of that kind side by side, in copies of a healthy
workspace (the TUI fixture's checkpoints and the report tests' schema-v1 analysis), and the app
visits all six screens."""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.test_reports_fixture import write_synthetic_analysis
from tests.test_tui import SIZE, text_of, wait_for
from tests.test_tui_fixtures import ANALYSIS_ID, CREATED, DATASET, save_models
from tui.app import KdcamApp

SCREENS = ("checkpoints", "train", "analyze", "leaderboard", "browser", "export")
KEYS = {name: str(i + 1) for i, name in enumerate(SCREENS)}


@functools.cache
def healthy_workspace() -> Path:
    """Three small checkpoints and one analysis of them, built once per session (tests copy it)."""
    root = Path(tempfile.mkdtemp(prefix="kdcam-hostile-"))
    atexit.register(shutil.rmtree, root, True)
    ws = save_models(root / "ws")
    write_synthetic_analysis(ws, ANALYSIS_ID, n=12, students=("kd-student", "at-student"), num_classes=4)
    return ws.root


def workspace_copy(destination: Path) -> Path:
    shutil.copytree(healthy_workspace(), destination)
    return destination


# -- corruptions -------------------------------------------------------------------------
def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def setting(key: str, value: Any) -> Callable[[Any], Any]:
    def change(data: Any) -> Any:
        data[key] = value
        return data

    return change


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def bad_checkpoint(ws: Path, name: str, key: str, value: Any) -> str:
    """A copy of the teacher under ``name`` whose metadata has ``key: value``; returns the JSON's file name."""
    store = ws / "checkpoints"
    shutil.copy(store / "teacher.safetensors", store / f"{name}.safetensors")
    meta = json.loads((store / "teacher.json").read_text())
    meta.update(name=name, **{key: value})
    (store / f"{name}.json").write_text(json.dumps(meta))
    return f"{name}.json"


def write_run(ws: Path, run_id: str) -> Path:
    """A small finished run as the trainer records it (config, status, one line per epoch)."""
    path = ws / "runs" / run_id
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({
        "name": "teacher", "role": "teacher", "method": None, "arch": "vgg8", "teacher": None, "dataset": DATASET,
        "seed": 0, "spec": {"workspace": str(ws), "dataset": DATASET}}))
    (path / "status.json").write_text(json.dumps({"state": "finished", "message": "", "updated": CREATED}))
    epochs = [{"epoch": e, "epochs": 2, "losses": {"ce": 1.0 / e}, "train_acc": 0.5, "test_acc": 0.5, "lr": 0.1,
               "images_per_s": 100.0, "elapsed": float(e)} for e in (1, 2)]
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
    return path


def copy_analysis(ws: Path, new_id: str) -> Path:
    target = ws / "analyses" / new_id
    shutil.copytree(ws / "analyses" / ANALYSIS_ID, target)
    edit_json(target / "results.json", setting("id", new_id))
    return target


@dataclass
class Kind:
    """One kind of workspace file, corrupted in every way issue 9 lists."""

    corrupt: Callable[[Path], None]
    #: screen -> the file names it must show as unreadable
    shown: dict[str, list[str]]
    #: analyses to open in the browser one after another (each must show its own problem)
    browse: list[tuple[str, str]] = field(default_factory=list)
    #: the healthy analysis is still there: the browser shows its images first
    analysis_readable: bool = True


def corrupt_checkpoints(ws: Path) -> None:
    bad_checkpoint(ws, "bad-accuracy", "accuracy", "high")
    bad_checkpoint(ws, "bad-created", "created", 5)
    bad_checkpoint(ws, "bad-params", "params", "many")
    bad_checkpoint(ws, "bad-width", "width", "abc")


def corrupt_runs(ws: Path) -> None:
    write_run(ws, "20260102-030405-good")
    (write_run(ws, "20260102-030406-status") / "status.json").write_text("[]")
    events = write_run(ws, "20260102-030407-events") / "events.jsonl"
    events.write_text(events.read_text() + "[1]\n")


def corrupt_results(ws: Path) -> None:
    """No readable analysis is left: the original and two copies, each broken differently."""
    n_many = copy_analysis(ws, "bad-n") / "results.json"
    bad_pair = copy_analysis(ws, "bad-pair") / "results.json"
    edit_json(ws / "analyses" / ANALYSIS_ID / "results.json", setting("version", "1"))

    def n_is_many(data: Any) -> Any:
        data["dataset"]["n"] = "many"
        return data

    def pair_is_a_number(data: Any) -> Any:
        data["pairs"].append(5)
        return data

    edit_json(n_many, n_is_many)
    edit_json(bad_pair, pair_is_a_number)


def corrupt_arrays(ws: Path) -> None:
    """results.json is fine (the lists show these analyses); the arrays beside it are truncated."""
    truncate(copy_analysis(ws, "bad-images") / "images.npy")
    truncate(copy_analysis(ws, "bad-per-image") / "per_image.npz")


def markup_in_file_text(ws: Path) -> None:
    """Text a front-end shows, written as Rich/Textual markup: a closing tag that closes nothing made
    the markup parser raise inside a table cell, closing the app. Free text (dataset spec, class
    names) must show as written; names that must be names make their file unreadable, named."""
    edit_json(ws / "checkpoints" / "teacher.json", setting("dataset", "[/]shapes[red]"))
    bad_checkpoint(ws, "bad-markup", "accuracy", "[/]")

    def hostile_text(data: Any) -> Any:
        data["dataset"]["spec"] = "[/bold]spec"
        data["dataset"]["class_names"][0] = "[/]c0"
        return data

    edit_json(ws / "analyses" / ANALYSIS_ID / "results.json", hostile_text)


#: markup Textual's parser reads although rich.markup.escape leaves it alone (a tag may start with a space)
CLICK = "[ @click=app.quit]x"


def markup_in_names_and_folders(ws: Path) -> None:
    """Folder names and free-text fields a stranger controls, written as markup: an analysis folder
    whose name is an action tag, a run folder named like a style, a split and a checkpoint method
    that close nothing. As markup they crashed the app (a worker's MarkupError, then a toast that
    failed again) or planted a clickable action; they must show as written or as unreadable."""
    copy_analysis(ws, CLICK)
    edit_json(ws / "analyses" / ANALYSIS_ID / "results.json", lambda data: {
        **data, "dataset": {**data["dataset"], "split": "[/x]test"}})
    store = ws / "checkpoints"
    shutil.copy(store / "teacher.safetensors", store / "odd-method.safetensors")
    meta = json.loads((store / "teacher.json").read_text())
    meta.update(name="odd-method", role="student", teacher="teacher", method="[/x]kd")
    (store / "odd-method.json").write_text(json.dumps(meta))
    write_run(ws, "[b]run")


RESULTS_SHOWN = ["analysis fixture-gradcam", "analysis bad-n", "analysis bad-pair", "results.json"]
KINDS = {
    "checkpoint-json": Kind(corrupt_checkpoints, {
        "checkpoints": ["bad-accuracy.json", "bad-created.json", "bad-params.json", "bad-width.json"],
        "analyze": ["bad-accuracy.json", "bad-created.json", "bad-params.json", "bad-width.json"],
    }),
    "run-records": Kind(corrupt_runs, {
        "train": ["20260102-030406-status/status.json", "20260102-030407-events/events.jsonl"],
    }),
    "results-json": Kind(corrupt_results, {
        "leaderboard": RESULTS_SHOWN, "browser": RESULTS_SHOWN, "export": RESULTS_SHOWN,
    }, analysis_readable=False),
    "analysis-arrays": Kind(corrupt_arrays, {}, browse=[("bad-images", "images.npy"),
                                                         ("bad-per-image", "per_image.npz")]),
    "markup-in-file-text": Kind(markup_in_file_text, {
        "checkpoints": ["bad-markup.json"], "leaderboard": ["[/bold]spec"], "browser": ["[/]c0"],
    }),
    "markup-in-names-and-folders": Kind(markup_in_names_and_folders, {
        "leaderboard": ["[/x]test", f"analysis {CLICK}"], "browser": [f"analysis {CLICK}"],
        "export": [f"analysis {CLICK}"], "train": ["[b]run"],
    }),
}


# -- what the app shows ------------------------------------------------------------------
def shown_text(app: KdcamApp) -> str:
    """Every visible text of the current screen: labels, statics, table cells."""
    parts = [text_of(w) for w in app.screen.query(Static) if w.display]
    for table in app.screen.query(DataTable):
        parts += [" ".join(str(cell) for cell in table.get_row_at(r)) for r in range(table.row_count)]
    return "\n".join(parts)


async def checkpoint_details(app: KdcamApp, pilot: Pilot) -> str:
    """The inspect pane of every row in turn (an unreadable checkpoint's reason shows when it is highlighted)."""
    table = app.screen.query_one("#checkpoints", DataTable)
    texts = []
    for row in range(table.row_count):
        table.move_cursor(row=row)
        await pilot.pause(0.05)
        texts.append(shown_text(app))
    return "\n".join(texts)


def workspace_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def assert_no_crash_notice(app: KdcamApp) -> None:
    """A reader that raised anything but KdcamError would surface as a 'reading failed' notification."""
    failures = [str(n.message) for n in app._notifications if "reading failed" in (n.title or "")]
    assert failures == [], failures


@pytest.mark.parametrize("kind", KINDS)
async def test_tui_survives_and_names_the_broken_file(kind: str, tmp_path: Path) -> None:
    ws = workspace_copy(tmp_path / "ws")
    spec = KINDS[kind]
    spec.corrupt(ws)
    before = workspace_hashes(ws)

    app = KdcamApp(workspace=str(ws))
    async with app.run_test(size=SIZE) as pilot:
        for screen in SCREENS:
            await pilot.press(KEYS[screen])
            assert app.current_mode == screen and app.is_running
            expected = spec.shown.get(screen, [])
            if screen == "checkpoints" and expected:
                table = app.screen.query_one("#checkpoints", DataTable)
                rows = 3 + len(expected)
                await wait_for(pilot, lambda table=table, rows=rows: table.row_count == rows)
                assert sum(str(table.get_row_at(r)[1]) == "unreadable" for r in range(table.row_count)) == \
                    len(expected)
                text = await checkpoint_details(app, pilot)
                missing = [name for name in expected if name not in text]
                assert missing == [], f"{screen} does not name {missing}:\n{text}"
                continue
            try:
                await wait_for(pilot, lambda names=expected: all(n in shown_text(app) for n in names), timeout=20)
            except AssertionError:
                raise AssertionError(f"{screen} does not name {expected}:\n{shown_text(app)}") from None
            if screen == "browser" and spec.analysis_readable:
                images = app.screen.query_one("#image-list", DataTable)
                await wait_for(pilot, lambda images=images: images.row_count == 12)
            await pilot.pause(0.2)  # the screen's readers finish; nothing may close the app
            assert app.is_running, f"the app exited on the {screen} screen"

        for analysis_id, file_name in spec.browse:
            app.selected_analysis = analysis_id
            await pilot.press(KEYS["checkpoints"], KEYS["browser"])
            try:
                await wait_for(pilot, lambda a=analysis_id, f=file_name: f"analyses/{a}/{f}" in shown_text(app),
                               timeout=20)
            except AssertionError:
                raise AssertionError(f"browser does not name {analysis_id}/{file_name}:\n{shown_text(app)}") \
                    from None
            for key in ("j", "t", "m", "o", "c", "escape", "w", "d", "s", "]"):  # keys work on whatever is shown (c: a picker)
                await pilot.press(key)
            assert app.is_running

        # Every screen still answers its keys.
        for screen in SCREENS:
            await pilot.press(KEYS[screen])
            assert app.current_mode == screen
        assert app.is_running
        assert_no_crash_notice(app)

    assert workspace_hashes(ws) == before, "the TUI modified workspace files"


@pytest.mark.parametrize("text", ["[/]", CLICK, "[UNK] token", "a\\[b]c", "[[b]]", "end\\"])
def test_markup_literal_shows_any_text_as_written(text: str) -> None:
    from textual.content import Content

    from tui.format import markup_literal

    shown = Content.from_markup(markup_literal(text))
    assert shown.plain == text and not shown.spans


async def test_toasts_show_workspace_text_as_written(tmp_path: Path) -> None:
    # a toast's markup error is raised while rendering, where nothing catches it: the app closed
    app = KdcamApp(workspace=str(workspace_copy(tmp_path / "ws")))
    async with app.run_test(size=SIZE) as pilot:
        app.screen.notify(f"cannot read {CLICK} [/]")  # Widget.notify passes markup=True itself
        await pilot.pause(0.3)
        assert app.is_running
        assert [str(n.message) for n in app._notifications][-1] == f"cannot read {CLICK} [/]"
        assert not any(n.markup for n in app._notifications)
