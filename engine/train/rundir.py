"""Writing one run directory: config, per-epoch events, status, and the resume state.

Every file is replaced atomically, so a kill at any moment leaves the previous complete
version: events.jsonl is rewritten whole each epoch (it is small) rather than appended to.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from engine.api import atomic
from engine.api.names import check_id
from engine.api.runs import read_events
from engine.api.workspace import read_json
from engine.errors import KdcamError


def new_run_id(name: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    return f"{stamp}-{name}"


class RunDir:
    def __init__(self, path: Path):
        self.path = path
        self.run_id = path.name

    @classmethod
    def create(cls, runs_root: Path, name: str, config: dict[str, Any]) -> "RunDir":
        run = cls(runs_root / new_run_id(name))
        run.path.mkdir(parents=True, exist_ok=False)
        atomic.write_json(run.path / "config.json", config)
        run.set_status("running")
        return run

    @classmethod
    def open(cls, runs_root: Path, run_id: str) -> "RunDir":
        run = cls(runs_root / check_id("run id", run_id))
        if read_json(run.path / "config.json") is None:
            raise KdcamError(f"no run {run_id!r} in {runs_root}")
        return run

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.path / "config.json") or {}

    @property
    def state_path(self) -> Path:
        return self.path / "state.pt"

    def events(self) -> list[dict[str, Any]]:
        return [record.to_dict() for record in read_events(self.path / "events.jsonl")]

    def write_events(self, records: list[dict[str, Any]]) -> None:
        atomic.write_text(self.path / "events.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    def set_status(self, state: str, message: str = "", **extra: Any) -> None:
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        atomic.write_json(self.path / "status.json", {"state": state, "message": message, "pid": os.getpid(),
                                                      "updated": now, **extra})

    def save_state(self, state: dict[str, Any]) -> None:
        atomic.write_with(self.state_path, lambda tmp: torch.save(state, tmp))

    def load_state(self) -> dict[str, Any]:
        """The resume state; ``weights_only`` so a tampered file cannot execute code."""
        if not self.state_path.exists():
            raise KdcamError(f"run {self.run_id} has no resume state (it stopped before finishing an epoch)")
        try:
            return torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling problem means the same to the user
            raise KdcamError(f"resume state {self.state_path} is unreadable: {exc}") from None
