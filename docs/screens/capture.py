"""Plain-text captures of every kdcam-tui screen and of the CLI lists, as a user sees them.

    python docs/screens/capture.py WORKSPACE [--out docs/screens] [--sizes 80x24 120x40]
    make docs-screens                      # the same, over the workspace make run wrote

Run from a checkout: its own engine and tui are used (PYTHONPATH is set to it). Each screen
(keys 1-6) is shown under tmux at each size and captured with ``tmux capture-pane -p`` once
the screen has stopped changing; the CLI lists (``kdcam checkpoints|runs|analyses list``) are
printed with COLUMNS set to the width. Images are half-blocks: tmux without passthrough.
Files are named SCREEN-COLSxROWS.txt and cli-LIST-COLSxROWS.txt.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = ["tmux", "-L", "kdcam-screens", "-f", str(ROOT / "tests" / "tmux-plain.conf")]
SCREENS = (("1", "checkpoints"), ("2", "train"), ("3", "analyze"), ("4", "leaderboard"), ("5", "browser"),
           ("6", "export"))
LISTS = ("checkpoints", "runs", "analyses")


def tmux(*args: str) -> str:
    return subprocess.run([*SERVER, *args], capture_output=True, text=True, timeout=20, check=True).stdout


def settled(quiet: float = 2.0, timeout: float = 60.0) -> str:
    """The pane once it has not changed for ``quiet`` seconds (background reads and pictures drawn)."""
    deadline = time.monotonic() + timeout
    shown, since = tmux("capture-pane", "-p"), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = tmux("capture-pane", "-p")
        if now != shown:
            shown, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return shown
    raise SystemExit(f"the screen never settled:\n{shown}")


def capture_tui(workspace: Path, out: Path, cols: int, rows: int) -> None:
    env = f"PYTHONPATH={shlex.quote(str(ROOT))} TERM=xterm-256color"
    command = f"cd {shlex.quote(str(workspace.parent))} && {env} {shlex.quote(sys.executable)} -m tui.app " \
              f"--workspace {shlex.quote(workspace.name)}"
    tmux("new-session", "-d", "-s", "screens", "-x", str(cols), "-y", str(rows), command)
    try:
        settled()
        for key, name in SCREENS:
            tmux("send-keys", "-t", "screens", key)
            (out / f"{name}-{cols}x{rows}.txt").write_text(settled())
        tmux("send-keys", "-t", "screens", "q")
    finally:
        subprocess.run([*SERVER, "kill-server"], capture_output=True, timeout=20, check=False)


def capture_lists(workspace: Path, out: Path, cols: int, rows: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(cols), "LINES": str(rows)}
    for name in LISTS:
        printed = subprocess.run([sys.executable, "-m", "engine.cli.main", "--workspace", workspace.name, name,
                                  "list"], cwd=workspace.parent, env=env, capture_output=True, text=True,
                                 timeout=120, check=True).stdout
        (out / f"cli-{name}-list-{cols}x{rows}.txt").write_text(printed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screens")
    parser.add_argument("--sizes", nargs="+", default=["80x24", "120x40"])
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("capture.py needs tmux (apt-get install tmux)")
    workspace = args.workspace.resolve()
    for size in args.sizes:
        cols, rows = (int(n) for n in size.split("x"))
        capture_tui(workspace, args.out, cols, rows)
        capture_lists(workspace, args.out, cols, rows)
        print(f"{size}: {len(SCREENS)} screens and {len(LISTS)} lists in {args.out}")


if __name__ == "__main__":
    main()
