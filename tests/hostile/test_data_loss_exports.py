"""Data loss through exports and previews: kdcam replaces only what it wrote itself, and a kill
at any moment leaves the export's name holding one complete export (issue 10, items 4, 7, 9).

Each case asserts the user's promise: their files still there byte for byte, the workspace
intact, one message naming the path and the problem, and kdcam's own exit code (1).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.api import atomic
from engine.api.exports import MANIFEST
from engine.api.specs import ExportSpec
from engine.api.sweep import sweep_workspace
from engine.api.workspace import Workspace
from engine.cli.main import main
from engine.jobs import JobContext
from engine.reports.export import run_export_job
from tests.test_reports_fixture import write_synthetic_analysis


def context() -> JobContext:
    return JobContext("test", lambda event: None, threading.Event())


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its bytes (files) or link target (symlinks)."""
    tree: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            tree[key] = "-> " + os.readlink(path)
        elif path.is_file():
            tree[key] = path.read_bytes()
        else:
            tree[key] = "dir"
    return tree


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if atomic.TEMP_NAME.match(p.name)]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace.open(tmp_path / "ws").ensure()
    write_synthetic_analysis(workspace, "A", n=8, num_classes=3)
    (workspace.root / "notes.md").write_text("my notes\n")
    (workspace.checkpoints / "teacher.json").write_text('{"arch": "vgg8"}\n')
    return workspace


def export(ws: Workspace, *args: str) -> int:
    return main(["--workspace", str(ws.root), "export", "A", "--formats", "csv,json", *args])


def complete_export(folder: Path) -> list[str]:
    """The folder is exactly what its manifest lists, every file's size and hash matching."""
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["schema"] == "kdcam-export" and manifest["version"] == 1 and manifest["analysis"] == "A"
    listed = {entry["path"]: entry for entry in manifest["files"]}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert present == {*listed, MANIFEST}, f"{folder} holds {sorted(present)}"
    for name, entry in listed.items():
        data = (folder / name).read_bytes()
        assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"], name
    return sorted(listed)


@pytest.mark.parametrize("out", [".", "..", "./exports", "exports/..", "./checkpoints", "./exports/../.", "/"])
def test_overwrite_never_replaces_the_workspace_or_its_folders(ws: Workspace, out: str, capsys) -> None:
    before = snapshot(ws.root.parent)
    assert export(ws, "--out", out, "--overwrite") == 1
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert ("workspace" in err) or ("outside" in err) or ("not a kdcam export" in err)
    assert snapshot(ws.root.parent) == before


def test_a_users_folder_reached_through_dotdot_or_a_symlink_is_never_replaced(ws: Workspace, capsys) -> None:
    mine = ws.root / "mynotes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("chapter 1\n")
    (mine / MANIFEST).write_text(json.dumps({"schema": "kdcam-export", "version": 1, "analysis": "A",
                                             "files": []}))  # even a forged marker: it is outside exports/
    (ws.exports / "link").symlink_to(mine)
    outside = ws.root.parent / "elsewhere"
    outside.mkdir()
    (outside / "data.csv").write_text("1,2\n")
    before = snapshot(ws.root.parent)
    for out in ("exports/../mynotes", "link", str(outside), "../elsewhere"):
        assert export(ws, "--out", out, "--overwrite") == 1, out
        err = capsys.readouterr().err
        assert "refusing to overwrite" in err and "outside" in err, err
    assert snapshot(ws.root.parent) == before


def test_only_a_previous_kdcam_export_is_replaced_inside_exports(ws: Workspace, capsys) -> None:
    (ws.exports / "mine").mkdir()
    (ws.exports / "mine" / "draft.txt").write_text("keep me\n")
    (ws.exports / "plain").write_text("a file\n")
    before = snapshot(ws.root)
    assert export(ws, "--out", "mine", "--overwrite") == 1
    assert "not a kdcam export" in capsys.readouterr().err
    assert export(ws, "--out", "plain", "--overwrite") == 1
    assert "not a directory" in capsys.readouterr().err
    assert snapshot(ws.root) == before
    assert export(ws, "--out", "report") == 0
    assert export(ws, "--out", "report") == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["--workspace", str(ws.root), "export", "A", "--formats", "json", "--out", "report", "--overwrite"]) == 0
    assert complete_export(ws.exports / "report") == ["results.json"]
    assert not temporaries(ws.root)


def test_a_new_folder_may_go_anywhere_and_a_symlink_loop_is_one_message(ws: Workspace, capsys) -> None:
    assert export(ws, "--out", "../shared/new-report") == 0
    assert "results.json" in complete_export(ws.root.parent / "shared" / "new-report")
    (ws.exports / "loop").symlink_to(ws.exports / "loop")
    assert export(ws, "--out", "loop", "--overwrite") == 1
    err = capsys.readouterr().err
    assert "cannot resolve" in err and "loop" in err and "Traceback" not in err


def _killed_child(action: Callable[[], None], delay: float | None) -> None:
    """Run ``action`` in a forked copy of this process and SIGKILL it after ``delay`` seconds
    (or let it kill itself): a real kill, with none of the interpreter's start-up in the window."""
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(0)
    if delay is not None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _age(paths: list[Path], seconds: float = 120) -> None:
    """Make leftovers look as old as a sweep requires (time passing, without waiting for it)."""
    for path in paths:
        past = time.time() - seconds
        os.utime(path, (past, past), follow_symlinks=False)


def test_export_killed_at_random_moments_leaves_old_or_new_and_the_next_open_sweeps(ws: Workspace) -> None:
    """SIGKILL an --overwrite export at many random moments: the name always holds one complete
    export (the old or the new), and what the killed process left is gone after the next open."""
    small = ExportSpec(workspace=str(ws.root), analysis="A", out="r", formats=("json",), overwrite=True)
    large = ExportSpec(workspace=str(ws.root), analysis="A", out="r", formats=("csv", "json"), overwrite=True)
    run_export_job(small, context())
    run_export_job(large, context())
    started = time.perf_counter()  # timed as the kills will see it: forking a large test process is not free
    _killed_child(lambda: run_export_job(large, context()), None)
    duration = time.perf_counter() - started
    rng = random.Random(10)
    outcomes = set()
    interrupted = 0
    for attempt in range(120):  # until both outcomes and enough mid-write kills were seen (load varies timing)
        if attempt >= 40 and len(outcomes) == 2 and interrupted >= 5:
            break
        spec = (small, large)[attempt % 2]
        _killed_child(lambda spec=spec: run_export_job(spec, context()), rng.uniform(0, duration * 1.3))
        outcomes.add(tuple(complete_export(ws.exports / "r")))
        interrupted += bool(temporaries(ws.root))
        _age(temporaries(ws.root))
        Workspace.open(ws.root).ensure()  # the next command that opens the workspace for writing
        assert not temporaries(ws.root)
        assert sorted(p.name for p in ws.exports.iterdir()) == ["r"]
    assert len(outcomes) == 2, "the kills never let an export finish"
    assert interrupted >= 5, f"only {interrupted} of {attempt + 1} kills hit an export mid-write"


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-rename-fallback"])
def test_a_kill_inside_the_swap_keeps_a_complete_export(ws: Workspace, monkeypatch, exchange: bool) -> None:
    """The worst moment, hit exactly: the process dies right inside the swap. With the exchange
    the new export is in place; with the fallback (file systems without renameat2) the old one is
    put back by the next open."""
    run_export_job(ExportSpec(workspace=str(ws.root), analysis="A", out="r", formats=("json",)), context())
    real_exchange, real_rename = atomic.exchange, os.rename

    def exchange_then_die(a: Path, b: Path) -> bool:
        if not exchange:
            return False
        assert real_exchange(a, b)
        os.kill(os.getpid(), signal.SIGKILL)
        return True

    def rename_or_die(src, dst) -> None:
        if Path(dst).name == "r":  # the second rename of the fallback: the old one is already set aside
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename(src, dst)

    monkeypatch.setattr(atomic, "exchange", exchange_then_die)
    monkeypatch.setattr(atomic.os, "rename", rename_or_die)
    new = ExportSpec(workspace=str(ws.root), analysis="A", out="r", formats=("csv", "json"), overwrite=True)
    _killed_child(lambda: run_export_job(new, context()), None)
    monkeypatch.undo()
    assert temporaries(ws.root), "the kill left nothing to clean up: the swap was not reached"
    if not exchange:
        assert not (ws.exports / "r").exists()  # the instant the fallback cannot avoid
    _age(temporaries(ws.root))
    Workspace.open(ws.root).ensure()
    assert complete_export(ws.exports / "r") == (["confused_pairs.csv", "leaderboard.csv", "per_class_accuracy.csv",
                                                  "per_image.csv", "results.json"] if exchange else ["results.json"])
    assert not temporaries(ws.root)


def test_the_sweep_keeps_live_writers_recent_files_and_anything_not_kdcams(tmp_path: Path) -> None:
    live = tmp_path / f".a.json.kdtmp-{os.getpid()}-{atomic.host_id()}-abc123.tmp"
    other_host = tmp_path / ".b.json.kdtmp-1-00000000-abc123.tmp"
    lookalikes = [tmp_path / ".notes.tmp", tmp_path / ".c.json.kdtmp-x-abc.tmp", tmp_path / "d.kdtmp-1-0-a.tmp"]
    for path in [live, other_host, *lookalikes]:
        path.write_text("x")
    _age([live, other_host, *lookalikes])
    _killed_child(lambda: None, None)  # a pid that has certainly exited
    recent = tmp_path / f".e.json.kdtmp-{_dead_pid()}-{atomic.host_id()}-abc123.tmp"
    recent.write_text("x")
    assert sweep_workspace(tmp_path) == []
    _age([recent])
    assert sweep_workspace(tmp_path) == [recent]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [live, other_host, *lookalikes])


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


PREVIEW = "shapes?train=12&test=6&classes=3"


def preview(ws: Workspace, out: str) -> int:
    return main(["--workspace", str(ws.root), "data", "preview", PREVIEW, "--json", "--out", out])


def test_preview_replaces_only_a_previous_preview(ws: Workspace, capsys) -> None:
    from PIL import Image

    Image.new("RGB", (4, 4)).save(ws.root / "photo.png")
    (ws.exports / "to-notes").symlink_to(ws.root / "notes.md")
    before = snapshot(ws.root)
    for out in ("checkpoints/teacher.json", "photo.png", "exports/to-notes", "checkpoints", "notes.md"):
        assert preview(ws, out) == 1, out
        err = capsys.readouterr().err
        assert "refusing to overwrite" in err and "not a kdcam data preview" in err, err
    assert snapshot(ws.root) == before
    assert preview(ws, "sheet.png") == 0
    first = (ws.root / "sheet.png").read_bytes()
    assert preview(ws, "sheet.png") == 0  # a previous preview is replaced
    assert (ws.root / "sheet.png").read_bytes() == first
    assert not temporaries(ws.root)


async def test_the_tui_export_form_refuses_a_users_folder(ws: Workspace) -> None:
    """The Export form runs the same job: 'overwrite' on a user's folder is refused there too."""
    from textual.widgets import Checkbox, Input, Label

    from tui.app import KdcamApp

    mine = ws.root / "mynotes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("chapter 1\n")
    before = snapshot(ws.root)
    app = KdcamApp(workspace=str(ws.root))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        screen = app.screen
        for _ in range(200):
            if screen.query_one("#analysis").value == "A":
                break
            await pilot.pause(0.05)
        screen.query_one("#out", Input).value = "exports/../mynotes"
        screen.query_one("#overwrite", Checkbox).value = True
        await pilot.press("e")
        line = screen.query_one(".job-line", Label)
        for _ in range(200):
            if "failed" in str(line.render()):
                break
            await pilot.pause(0.05)
        shown = " ".join(str(line.render()).split())
        assert "export A failed" in shown and "refusing to overwrite" in shown, shown
    assert snapshot(ws.root) == before
