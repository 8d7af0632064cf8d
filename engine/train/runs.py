"""Reading run directories (``runs/ID/``) without torch, for the TUI and the CLI.

A run directory holds ``config.json`` (what was asked), ``events.jsonl`` (one object per
finished epoch), ``status.json`` (running | finished | failed | cancelled, with a message)
and ``state.pt`` (resume state; never read here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import KdcamError
from engine.names import check_id
from engine.workspace import Workspace, read_json


@dataclass
class RunInfo:
    run_id: str
    path: Path
    config: dict[str, Any]
    status: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        """running | finished | failed | cancelled (a killed run still says running; it is resumable)."""
        return str(self.status.get("state", "unknown"))

    @property
    def resumable(self) -> bool:
        return self.state != "finished" and (self.path / "state.pt").exists()

    @property
    def last_epoch(self) -> int:
        return int(self.events[-1]["epoch"]) if self.events else 0

    @property
    def best_accuracy(self) -> float | None:
        accs = [e["test_acc"] for e in self.events if "test_acc" in e]
        return max(accs) if accs else None


def _workspace(ws: Workspace | str | Path) -> Workspace:
    return ws if isinstance(ws, Workspace) else Workspace.open(ws)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete line of events.jsonl (a torn last line from a crash is skipped)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def read_run(ws: Workspace | str | Path, run_id: str) -> RunInfo:
    root = _workspace(ws).runs
    check_id("run id", run_id)
    path = root / run_id
    config = read_json(path / "config.json")
    if config is None:
        raise KdcamError(f"no run {run_id!r} in {path.parent} (missing or unreadable config.json)")
    status = read_json(path / "status.json") or {"state": "unknown"}
    return RunInfo(run_id, path, config, status, read_events(path / "events.jsonl"))


def list_runs(ws: Workspace | str | Path) -> list[RunInfo]:
    """All readable runs, newest first (run ids start with their UTC start time)."""
    root = _workspace(ws).runs
    if not root.is_dir():
        return []
    runs = []
    for path in sorted(root.iterdir(), reverse=True):
        if path.is_dir() and not path.name.startswith(".") and (path / "config.json").exists():
            try:
                runs.append(read_run(ws, path.name))
            except KdcamError:
                continue
    return runs
