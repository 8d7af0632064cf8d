"""report.html in a real browser: headless Chromium loads it offline, the leaderboard is in the
rendered DOM (after the page's script ran), a screenshot is taken, and no JavaScript error
reaches the console. Chromium missing: skipped locally, a failure in CI (CI=true)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.api.specs import ExportSpec
from engine.api.workspace import Workspace
from engine.jobs import JobContext
from engine.reports.export import run_export_job
from tests.test_reports_fixture import write_synthetic_analysis

pytestmark = pytest.mark.browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--enable-logging=stderr", "--v=0"]
CONSOLE_LINE = re.compile(r":CONSOLE:?\d*\]\s*\"(?P<message>.*)\", source: (?P<source>\S*)")


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path:
        return path
    message = "headless Chromium is needed for the report browser test: install the Debian package 'chromium'"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (`make test` installs it when missing)")
    pytest.skip(message)


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def page_console(stderr: str) -> list[str]:
    """Every console message of the page. Chromium logs console.error and uncaught exceptions at
    the same level as console.log, and the report never logs, so any message is a failure."""
    return [m["message"] for m in CONSOLE_LINE.finditer(stderr) if m["source"].startswith("file://")]


class RenderedLeaderboard(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.students: list[str] = []
        self.ready = False
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html" and a.get("data-report-ready") == "1":
            self.ready = True
        if tag == "table":
            self._inside = a.get("id") == "leaderboard"
        elif self._inside and tag == "tr" and a.get("data-student"):
            self.students.append(a["data-student"] or "")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = Workspace.open(tmp_path_factory.mktemp("ws")).ensure()
    write_synthetic_analysis(ws, "a1", n=24, num_classes=4)
    result = run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", examples=2, formats=("html",)),
                            JobContext("t", lambda e: None, threading.Event()))
    return Path(result.path) / "report.html"


def test_console_error_detection_sees_a_broken_page(tmp_path: Path) -> None:
    """Guards the test below: a page that throws must be caught by the same flags and parser."""
    binary = chromium()
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('bad'); throw new Error('boom');</script></body></html>")
    result = run_chromium(binary, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert len(page_console(result.stderr)) == 2, result.stderr[-2000:]


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    binary = chromium()
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = RenderedLeaderboard()
    rendered.feed(dom.stdout)
    assert rendered.students == ["kd-student", "at-student", "si-student"]
    assert rendered.ready, "the page's script did not run to the end"
    assert page_console(dom.stderr) == []

    shot = tmp_path / "report.png"
    screenshot = run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,1600",
                              report.as_uri())
    assert screenshot.returncode == 0, screenshot.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert page_console(screenshot.stderr) == []


LONG_NAMES = ("resnet8x4-fitnet-shapes-demo-s0", "resnet8x4-crd-shapes-demo-s0", "resnet8x4-kd-shapes-demo-s0-last")
MEASURE = """<script>
(function () {
  var out = {tables: [], names: []};
  document.querySelectorAll('section table').forEach(function (table) {
    var box = table.closest('section'), style = getComputedStyle(box);
    var room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    out.tables.push([table.id, Math.round(table.getBoundingClientRect().width), Math.round(room),
                     Array.prototype.map.call(table.querySelectorAll('th'), function (th) { return Math.round(th.getBoundingClientRect().width); })]);
  });
  document.querySelectorAll('td .name').forEach(function (name) {
    var lines = name.getClientRects().length;
    out.names.push([name.getAttribute('title'), name.textContent, lines]);
  });
  var pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script></body>"""


def test_tables_fit_their_box_and_long_names_stay_on_one_line_at_1024px(tmp_path: Path) -> None:
    """The models table used to overflow its box and names wrapped to 4-5 lines: at a 1024 px window
    every table fits its section and every model name is one line, with the whole name on hover."""
    binary = chromium()
    ws = Workspace.open(tmp_path / "ws").ensure()
    write_synthetic_analysis(ws, "a1", n=16, num_classes=4, students=LONG_NAMES)
    result = run_export_job(ExportSpec(workspace=str(ws.root), analysis="a1", examples=2, formats=("html",)),
                            JobContext("t", lambda e: None, threading.Event()))
    page = tmp_path / "measured.html"
    page.write_text((Path(result.path) / "report.html").read_text().replace("</body>", MEASURE, 1))
    dom = run_chromium(binary, tmp_path / "profile", "--window-size=1024,900", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    measured = json.loads(html.unescape(found.group(1)))
    assert {t[0] for t in measured["tables"]} >= {"leaderboard", "models", "splits"}
    for table_id, width, room, _ in measured["tables"]:
        assert 0 < width <= room, f"table {table_id} is {width}px wide in a {room}px box"
    assert measured["names"]
    for full, shown, lines in measured["names"]:
        assert lines == 1, f"{full} shown as {shown!r} on {lines} lines"
        assert len(shown) <= 26 and full in (*LONG_NAMES, "teacher")
    shown = {full: short for full, short, _ in measured["names"]}
    assert len(set(shown.values())) == len(shown), "two models look alike"
