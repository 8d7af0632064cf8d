"""The browser's inline images in a real Sixel terminal: xterm (``-ti vt340``) under Xvfb,
keys sent with xdotool, screenshots checked by pixels. Skipped only where those programs are
missing (``make test`` installs them as root with apt: xvfb xterm xdotool imagemagick).

Every image box must hold a picture (not background), match the PNG that ``e`` exports of
the same cards, and the cells beside it must be blank, after each browser action."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.api.workspace import Workspace
from tests.test_reports_fixture import write_synthetic_analysis

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("Xvfb", "xdotool", "import")
COLS, ROWS = 120, 40
# The browser's layout at 120x40 (tui/kdcam.tcss): cards 19 cells wide every 20 columns from
# column 41, 4 per row, 13 rows apart from row 2; each picture box is 19x10 cells.
CARDS = 5  # original, teacher and three students
BOX = (19, 10)

missing = [tool for tool in TOOLS if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (make test installs "
                                "xvfb xterm xdotool imagemagick with apt as root)")


def card_cell(i: int) -> tuple[int, int]:
    return 40 + 20 * (i % 4), 2 + 13 * (i // 4)


# Each terminal's command line for a COLSxROWS window titled kdcam-terminal-test, before the program.
TERMINALS = {
    "xterm-sixel": ["xterm", "-ti", "vt340", "-fa", "DejaVu Sans Mono", "-fs", "10", "-b", "0", "-bw", "0",
                    "-geometry", f"{COLS}x{ROWS}+0+0", "-title", "kdcam-terminal-test", "-e"],
    # kitty draws with OpenGL 3.3: Mesa's software renderer (llvmpipe) does under Xvfb
    # tmux inside that xterm, passing our escapes through (a private server: -L, closed with the test)
    "xterm-tmux-passthrough": ["xterm", "-ti", "vt340", "-fa", "DejaVu Sans Mono", "-fs", "10", "-b", "0", "-bw",
                               "0", "-geometry", f"{COLS}x{ROWS}+0+0", "-title", "kdcam-terminal-test", "-e",
                               "tmux", "-L", "kdcam-test", "-f", str(ROOT / "tests" / "tmux-passthrough.conf"),
                               "new-session"],
    "kitty": ["kitty", "--config", "NONE", "--title", "kdcam-terminal-test", "-o", "font_family=DejaVu Sans Mono",
              "-o", "font_size=10", "-o", "remember_window_size=no", "-o", f"initial_window_width={COLS}c",
              "-o", f"initial_window_height={ROWS}c", "-o", "window_padding_width=0",
              "-o", "placement_strategy=top-left", "-o", "cursor_blink_interval=0"],
}


class Terminal:
    """A terminal on a private Xvfb display running kdcam-tui."""

    def __init__(self, workspace: Path, terminal: str = "xterm-sixel") -> None:
        self.server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1200x800x24", "-nolisten", "tcp"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.server.stdout is not None
        self.env = {**os.environ, "DISPLAY": ":" + self.server.stdout.readline().decode().strip(),
                    "PYTHONPATH": str(ROOT), "LIBGL_ALWAYS_SOFTWARE": "1"}
        for name in ("TMUX", "KDCAM_IMAGES", "KITTY_WINDOW_ID"):
            self.env.pop(name, None)
        self.term = subprocess.Popen(
            [*TERMINALS[terminal], sys.executable, "-m", "tui.app", "--workspace", str(workspace)],
            env=self.env, cwd=ROOT, stderr=subprocess.PIPE)
        self.name = terminal
        try:
            window = self.xdotool("search", "--sync", "--onlyvisible", "--name", "kdcam-terminal-test").split()[0]
        except subprocess.TimeoutExpired:
            self.close()
            assert self.term.stderr is not None
            pytest.skip(f"{terminal} opened no window in 20 s under Xvfb: {self.term.stderr.read().decode()[-300:]}")
        self.xdotool("windowfocus", "--sync", window)
        self.window = window

    @property
    def cell(self) -> tuple[int, int]:
        """A cell's pixels, from the window as it is now (kitty sizes its window after mapping it)."""
        geometry = dict(line.split("=") for line in self.xdotool("getwindowgeometry", "--shell", self.window).split())
        return int(geometry["WIDTH"]) // COLS, int(geometry["HEIGHT"]) // ROWS

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=20,
                              check=True).stdout

    def key(self, key: str) -> None:
        self.xdotool("key", key)

    def screenshot(self) -> np.ndarray:
        png = subprocess.run(["import", "-window", "root", "png:-"], env=self.env, capture_output=True,
                             timeout=20, check=True).stdout
        cell = self.cell
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[: ROWS * cell[1], : COLS * cell[0]]

    def settled(self, ready: object = None, timeout: float = 10.0) -> np.ndarray:
        """The screen once two screenshots 0.3 s apart agree (and ``ready(shot)`` holds)."""
        deadline = time.monotonic() + timeout
        previous = self.screenshot()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            shot = self.screenshot()
            if np.array_equal(shot, previous) and (ready is None or ready(shot)):  # type: ignore[operator]
                return shot
            previous = shot
        raise AssertionError("the screen did not settle within the time allowed")

    def cells(self, shot: np.ndarray, col: int, row: int, cols: int, rows: int) -> np.ndarray:
        cw, ch = self.cell
        return shot[row * ch:(row + rows) * ch, col * cw:(col + cols) * cw]

    def close(self) -> None:
        subprocess.run(["tmux", "-L", "kdcam-test", "kill-server"], capture_output=True, check=False)
        for process in (self.term, self.server):
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(params=list(TERMINALS))
def terminal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Terminal, Workspace]]:
    if shutil.which(TERMINALS[request.param][0]) is None:
        pytest.skip(f"needs {TERMINALS[request.param][0]} (make test installs it with apt as root)")
    ws = Workspace.open(tmp_path / "ws").ensure()
    write_synthetic_analysis(ws, "a1", n=12, num_classes=3)
    term = Terminal(ws.root, request.param)
    try:
        yield term, ws
    finally:
        term.close()


def is_background(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels.max(axis=-1) < 24)  # the app's black background, anti-aliasing aside


def picture_in(term: Terminal, shot: np.ndarray, i: int) -> np.ndarray:
    """Card ``i``'s picture: the square at the top of its box, centred."""
    box = term.cells(shot, *card_cell(i), *BOX)
    side = min(box.shape[:2])
    left = (box.shape[1] - side) // 2
    return box[:side, left:left + side]


def small(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((8, 8), Image.BOX), dtype=np.float64)


def exported(term: Terminal, ws: Workspace, since: float) -> list[np.ndarray]:
    """``e``: the panel PNG of the cards on screen, one picture per card (4x tiles from x=8, y=28)."""
    term.key("e")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        panels = [p for p in (ws.exports / "panels").glob("*.png") if p.stat().st_mtime > since] \
            if (ws.exports / "panels").is_dir() else []
        if panels:
            time.sleep(0.2)  # written atomically: complete once it exists
            panel = np.asarray(Image.open(max(panels, key=lambda p: p.stat().st_mtime)).convert("RGB"))
            tile = 32 * 4
            return [panel[28:28 + tile, 8 + i * (tile + 8): 8 + i * (tile + 8) + tile] for i in range(CARDS)]
        time.sleep(0.1)
    raise AssertionError("e wrote no panel PNG")


def check(term: Terminal, ws: Workspace, shot: np.ndarray, state: str) -> None:
    expected = exported(term, ws, time.time() - 0.5)
    for i in range(CARDS):
        picture = picture_in(term, shot, i)
        assert is_background(picture).mean() < 0.05, f"{state}: card {i} shows no image"
        difference = np.abs(small(picture) - small(expected[i])).mean()
        assert difference < 12, f"{state}: card {i} differs from the exported picture by {difference:.1f}/255"
        col, row = card_cell(i)
        beside = term.cells(shot, col + BOX[0], row, 1, BOX[1])  # the gap column right of the box
        assert is_background(beside).all(), f"{state}: characters beside card {i}"
        box = term.cells(shot, col, row, *BOX)
        below = box[picture.shape[0]:]
        assert is_background(below).all(), f"{state}: remnants below the picture of card {i}"


def test_tmux_without_passthrough_falls_back_to_half_blocks_and_says_why(tmp_path: Path) -> None:
    """tmux that does not pass escapes through: half-blocks in the boxes, and the help's image line
    tells the user which tmux option gives pictures (read from tmux's own copy of the screen)."""
    if shutil.which("tmux") is None or shutil.which("xterm") is None:
        pytest.skip("needs tmux and xterm (make test installs them with apt as root)")
    ws = Workspace.open(tmp_path / "ws").ensure()
    write_synthetic_analysis(ws, "a1", n=12, num_classes=3)
    TERMINALS["xterm-tmux-plain"] = [*TERMINALS["xterm-tmux-passthrough"]]
    TERMINALS["xterm-tmux-plain"][-2] = str(ROOT / "tests" / "tmux-plain.conf")
    term = Terminal(ws.root, "xterm-tmux-plain")

    def screen() -> str:
        return subprocess.run(["tmux", "-L", "kdcam-test", "capture-pane", "-p"], capture_output=True, text=True,
                              timeout=10, check=True).stdout

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if text in (shown := screen()):
                return shown
            time.sleep(0.3)
        raise AssertionError(f"{text!r} never shown; the screen:\n{screen()}")

    try:
        wait_for("Checkpoints")
        for _ in range(3):  # a key typed while the app is still starting can be lost: type it again
            term.key("5")
            try:
                shown = wait_for("▀")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("5 showed no half-block pictures")
        col, row = card_cell(0)
        box = [line[col:col + BOX[0]] for line in shown.splitlines()[row:row + BOX[1]]]
        assert sum(line.count("▀") for line in box) > BOX[0] * 5, "the first card is not drawn in half-blocks"
        if os.environ.get("KDCAM_SCREENSHOTS"):  # the README's half-block picture (make docs-screenshots)
            Image.fromarray(term.settled()).quantize(64).save(
                Path(os.environ["KDCAM_SCREENSHOTS"]) / "browser-halfblocks.png", optimize=True)
        term.key("question")
        shown = wait_for("half-blocks: inside tmux without passthrough")
        assert "`allow-passthrough on`" in shown, "the help does not say how to get pictures in tmux"
    finally:
        term.close()
        del TERMINALS["xterm-tmux-plain"]


def test_images_stay_right_through_browser_actions(terminal: tuple[Terminal, Workspace]) -> None:
    term, ws = terminal
    started = time.monotonic()

    def pictures_drawn(shot: np.ndarray) -> bool:
        """Every picture drawn, on the browser (whose gap columns are background, unlike the
        panels of other screens)."""
        return all(is_background(picture_in(term, shot, i)).mean() < 0.05
                   and is_background(term.cells(shot, card_cell(i)[0] + BOX[0], card_cell(i)[1], 1, BOX[1])).all()
                   for i in range(CARDS))

    term.settled(lambda s: not is_background(s).all(), timeout=20)  # the first screen, drawn
    for _ in range(3):  # a key typed while the app is still starting can be lost (kitty): type it again
        term.key("5")
        try:
            shots = {"browser": term.settled(pictures_drawn, timeout=8)}
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("5 showed no browser with pictures")
    check(term, ws, shots["browser"], "after 5")
    for key in ("j", "k", "o", "t"):
        before = term.screenshot()
        term.key(key)
        shot = term.settled(lambda s, b=before: pictures_drawn(s) and not np.array_equal(s, b))
        check(term, ws, shot, f"after {key}")
        shots[key] = shot
    if term.name == "xterm-tmux-passthrough":
        # Known limit, open in issue 16: after a screen switch tmux draws the boxes' cells after
        # the Sixel we passed through, erasing the pictures; 5, j, k, o and t above do hold.
        pytest.xfail("tmux passthrough: pictures erased after a screen switch")
    term.key("4")
    term.settled()
    term.key("5")
    check(term, ws, term.settled(pictures_drawn), "after 4 and 5")
    assert time.monotonic() - started < 60
    if os.environ.get("KDCAM_SCREENSHOTS"):  # the README's pictures (make docs-screenshots): the heatmaps of
        time.sleep(6)  # the true class, once the export notices above have timed out (5 s)
        term.key("t")
        shot = term.settled(pictures_drawn)
        Image.fromarray(shot).quantize(64).save(Path(os.environ["KDCAM_SCREENSHOTS"]) / f"browser-{term.name}.png",
                                                optimize=True)
