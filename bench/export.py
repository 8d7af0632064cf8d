"""Export benchmark: time `kdcam export` (default formats and examples) of a 10,000-image analysis of 7 models.

The analysis is SYNTHETIC but schema-faithful (tests/test_reports_fixture.py: every array and
every results.json field of docs/RESULTS_SCHEMA.md v1, numbers computed from the arrays), at the
size of a CIFAR test set: running the real CAM pipeline for 70,000 maps first would take this
2-core machine longer than the benchmark itself. The export's cost does not depend on how the
maps were made. Goal: under 60 s. Prints the total, the share of each kind of file, and sizes.

    .venv/bin/python bench/export.py [--n 10000] [--students 6] [--classes 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.api.specs import ExportSpec  # noqa: E402
from engine.api.workspace import Workspace  # noqa: E402
from engine.events import Progress  # noqa: E402
from engine.jobs import JobContext  # noqa: E402
from engine.reports.export import run_export_job  # noqa: E402
from tests.test_reports_fixture import write_synthetic_analysis  # noqa: E402

GOAL_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--students", type=int, default=6, help="students besides the teacher (default 6: 7 models)")
    parser.add_argument("--classes", type=int, default=20)
    args = parser.parse_args()
    students = tuple(f"{m}-student" for m in ("kd", "dkd", "at", "hints", "crd", "ls", "si", "fitnet")[: args.students])

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(tmp).ensure()
        start = time.perf_counter()
        write_synthetic_analysis(ws, "bench", n=args.n, students=students, num_classes=args.classes)
        print(f"synthetic analysis: {args.n} images, {1 + len(students)} models, {args.classes} classes "
              f"(built in {time.perf_counter() - start:.1f} s, not timed below)")

        spent: dict[str, float] = defaultdict(float)
        last = [time.perf_counter()]

        def on_event(event: object) -> None:
            now = time.perf_counter()
            if isinstance(event, Progress) and event.done:
                kind = event.message.rsplit(".", 1)[-1] if "." in event.message else "other"
                if event.message.startswith("figures/"):
                    kind = "png:" + event.message.split("/")[1].split("_")[0]
                spent[kind] += now - last[0]
            last[0] = now

        start = time.perf_counter()
        last[0] = start
        result = run_export_job(ExportSpec(workspace=str(ws.root), analysis="bench"),
                                JobContext("bench", on_event, threading.Event()))
        total = time.perf_counter() - start
        out = Path(result.path)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"export: {total:.1f} s for {len(result.files)} files, {size / 1e6:.1f} MB "
              f"(report.html {(out / 'report.html').stat().st_size / 1e6:.1f} MB); goal < {GOAL_S:.0f} s: "
              f"{'met' if total < GOAL_S else 'NOT met'}")
        for kind, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:<16} {seconds:6.1f} s  ({seconds / total:5.1%})")
    return 0 if total < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
