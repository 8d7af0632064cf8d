"""Browser per-key latency in a real terminal: xterm (-ti vt340) under Xvfb, j/k sent with
xdotool, Sixel images against half-blocks (KDCAM_IMAGES=halfcell) in the same terminal; and
kitty (Kitty graphics protocol, on Mesa's software OpenGL).

    .venv/bin/python bench/terminal.py [--keys 60]

Latency is measured inside the app, from the key's action to the frame with the new panel
having been written to the terminal (Sixel data included), as bench/tui.py does headless. Needs Xvfb, xterm, kitty and xdotool (make test installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
from tui.app import KdcamApp, prepare_terminal
from tui.screens.browser import BrowserScreen

started, latencies = [], []

class TimedBrowser(BrowserScreen):
    def action_move(self, step):
        started.append(time.perf_counter())
        super().action_move(step)

    def show_image(self):  # the panel of the new row: pictures, captions, metrics
        super().show_image()
        if len(started) > len(latencies):
            key = started[-1]
            self.call_after_refresh(lambda: latencies.append(time.perf_counter() - key))

class BenchApp(KdcamApp):
    MODES = {**KdcamApp.MODES, "browser": TimedBrowser}

prepare_terminal()
BenchApp(workspace=sys.argv[1]).run()
with open(sys.argv[2], "w") as out:
    json.dump(latencies, out)
"""


def run(workspace: Path, mode: str, keys: int) -> list[float]:
    server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1200x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert server.stdout is not None
    env = {**os.environ, "DISPLAY": ":" + server.stdout.readline().decode().strip(), "PYTHONPATH": str(ROOT),
           "KDCAM_IMAGES": mode, "LIBGL_ALWAYS_SOFTWARE": "1"}
    env.pop("TMUX", None)
    result = workspace.parent / f"latency-{mode}.json"
    terminal = ["kitty", "--config", "NONE", "--title", "kdcam-bench", "-o", "font_family=DejaVu Sans Mono",
                "-o", "font_size=10", "-o", "initial_window_width=120c", "-o", "initial_window_height=40c"] \
        if mode == "kitty" else ["xterm", "-ti", "vt340", "-fa", "DejaVu Sans Mono", "-fs", "10", "-b", "0", "-bw",
                                 "0", "-geometry", "120x40+0+0", "-title", "kdcam-bench", "-e"]
    term = subprocess.Popen([*terminal, sys.executable, "-c", CHILD, str(workspace), str(result)], env=env,
                            cwd=ROOT)

    def xdotool(*args: str) -> str:
        return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, check=True).stdout

    try:
        window = xdotool("search", "--sync", "--name", "kdcam-bench").split()[0]
        subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "kdcam-bench"], env=env,
                       capture_output=True, check=True)
        xdotool("windowfocus", "--sync", window)
        time.sleep(3)
        xdotool("key", "5")
        time.sleep(4)
        for i in range(keys):
            xdotool("key", "j" if (i // 10) % 2 == 0 else "k")
            time.sleep(0.25)
        xdotool("key", "q")
        term.wait(30)
    finally:
        term.kill()
        server.terminate()
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=60)
    args = parser.parse_args()
    from engine.api.workspace import Workspace
    from tests.test_reports_fixture import write_synthetic_analysis

    with tempfile.TemporaryDirectory() as scratch:
        ws = Workspace.open(Path(scratch) / "ws").ensure()
        write_synthetic_analysis(ws, "bench", n=60, num_classes=5)
        medians = {}
        for mode in ("sixel", "halfcell", "kitty"):
            ms = [1000 * x for x in run(ws.root, mode, args.keys)]
            medians[mode] = statistics.median(ms)
            print(f"{mode:8s} per-key latency over {len(ms)} j/k presses in {'kitty' if mode == 'kitty' else 'xterm'}: median {medians[mode]:.1f} ms, "
                  f"max {max(ms):.1f} ms (goal < 50 ms median)")
    print(f"sixel / half-block median ratio: {medians['sixel'] / medians['halfcell']:.2f}x")


if __name__ == "__main__":
    main()
