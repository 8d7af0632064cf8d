"""TUI responsiveness: time to first frame (fresh interpreter) and the browser's per-key latency.

    .venv/bin/python bench/tui.py [--workspace DIR] [--keys 200]

First frame: a subprocess starts kdcam-tui headless on an empty workspace and reports when
the first screen has been painted; printed beside bare interpreter start-up, measured in the
same run (goal < 0.6 s). Per-key latency: j/k presses in the image browser, from the key
reaching the app to the panel (original + every model's CAM, metrics) being repainted
(goal < 50 ms). Without --workspace a temporary one is made with the engine: three small
seeded models and a 200-image analysis. Numbers are for this machine, this run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST_FRAME_CHILD = """
import sys, time
from tui.app import KdcamApp, prepare_terminal

class FirstFrame(KdcamApp):
    def on_mount(self):
        super().on_mount()
        self.call_after_refresh(self.report)

    def report(self):
        print(time.time(), flush=True)
        self.exit()

prepare_terminal()  # as kdcam-tui does before its first frame
FirstFrame(workspace=sys.argv[1]).run(headless=True)
"""


def first_frame_seconds(workspace: Path, repeats: int) -> tuple[float, float]:
    """Median seconds from process launch to the first painted frame, and to a bare interpreter."""
    frames, bare = [], []
    for _ in range(repeats):
        start = time.time()
        out = subprocess.run([sys.executable, "-c", FIRST_FRAME_CHILD, str(workspace)], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        frames.append(float(out.split()[-1]) - start)
        start = time.time()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.time() - start)
    return statistics.median(frames), statistics.median(bare)


def make_workspace(root: Path) -> Path:
    import torch

    from engine.api.checkpoints import CheckpointMeta
    from engine.api.specs import AnalyzeSpec
    from engine.api.workspace import Workspace
    from engine.checkpoints.store import CheckpointStore
    from engine.jobs import JobContext, run_inline
    from engine.models import build_model

    dataset = "shapes?classes=8&train=64&test=256"
    ws = Workspace.open(root).ensure()
    store = CheckpointStore(ws.checkpoints)
    for seed, (name, role, method) in enumerate((("teacher", "teacher", None), ("kd", "student", "kd"),
                                                 ("at", "student", "at"), ("dkd", "student", "dkd"))):
        torch.manual_seed(seed)
        store.save(name, build_model("vgg8", 8, width=0.25), CheckpointMeta(
            name=name, arch="vgg8", num_classes=8, width=0.25, dataset=dataset, role=role, method=method,
            teacher="teacher" if role == "student" else None))
    spec = AnalyzeSpec(workspace=str(root), teacher="teacher", students=("kd", "at", "dkd"), dataset=dataset,
                       n=200, name="bench")
    run_inline(spec, JobContext("bench", lambda event: None, threading.Event()))
    return root


async def browser_latencies(workspace: Path, keys: int) -> list[float]:
    from textual import events

    from tui.app import KdcamApp
    from tui.screens.browser import BrowserScreen

    painted: list[float] = []

    class TimedBrowser(BrowserScreen):
        def show_image(self) -> None:
            super().show_image()
            self.call_after_refresh(lambda: painted.append(time.perf_counter()))

    class BenchApp(KdcamApp):
        MODES = {**KdcamApp.MODES, "browser": TimedBrowser}

    app = BenchApp(workspace=str(workspace))
    latencies = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        while not app.screen.query("#image-list") or not app.screen.rows:
            await asyncio.sleep(0.05)
        await pilot.pause(0.5)
        stride = min(20, len(app.screen.rows) - 1)  # down a stretch, up again, ...
        if stride < 1:
            raise SystemExit("the analysis needs at least two images")
        for i in range(keys):
            key = "j" if (i // stride) % 2 == 0 else "k"
            before = len(painted)
            start = time.perf_counter()
            app._driver.send_message(events.Key(key, key))
            while len(painted) == before:
                if time.perf_counter() - start > 10:
                    raise SystemExit(f"key {key!r} was not shown within 10 s")
                await asyncio.sleep(0.0005)
            latencies.append(painted[-1] - start)
            await asyncio.sleep(0.01)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, help="a workspace with at least one analysis")
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as empty:
        frame, bare = first_frame_seconds(Path(empty), args.repeats)
    print(f"time to first frame: {frame:.3f} s median of {args.repeats} (goal < 0.6 s); "
          f"bare interpreter start {bare:.3f} s; ratio {frame / bare:.1f}x")

    with tempfile.TemporaryDirectory() as scratch:
        workspace = args.workspace or make_workspace(Path(scratch) / "ws")
        latencies = asyncio.run(browser_latencies(workspace, args.keys))
    ms = sorted(1000 * x for x in latencies)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(f"browser per-key latency over {len(ms)} j/k presses: mean {statistics.mean(ms):.1f} ms, "
          f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms (goal < 50 ms)")


if __name__ == "__main__":
    main()
