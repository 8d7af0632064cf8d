"""Writing one run directory: config, per-epoch events, status, and the resume state.

Every file is replaced atomically, so a kill at any moment leaves the previous complete
version: events.jsonl is rewritten whole each epoch (it is small) rather than appended to.
status.json records who is running the run (pid, host id, process start time), so a reader
can tell a run whose process was killed (``interrupted``) from one still running.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from engine import distributed
from engine.api import atomic
from engine.api.names import check_id
from engine.api.runs import read_events, write_status
from engine.api.workspace import read_json
from engine.errors import KdcamError


def new_run_id(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    return f"{stamp}-{name}"


class RunDir:
    """One run's directory. In a distributed run every rank holds one, but only rank 0 writes."""

    def __init__(self, path: Path):
        self.path = path
        self.run_id = path.name
        self.writer = distributed.current().main

    @classmethod
    def create(cls, runs_root: Path, name: str, config: dict[str, Any]) -> RunDir:
        """A new run directory; called by the one process that writes (rank 0 of a distributed run)."""
        run = cls(runs_root / new_run_id(name))
        run.path.mkdir(parents=True, exist_ok=False)
        atomic.write_json(run.path / "config.json", config)
        run.set_status("running")
        return run

    @classmethod
    def open(cls, runs_root: Path, run_id: str) -> RunDir:
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
        if not self.writer:
            return
        atomic.write_text(self.path / "events.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    def set_status(self, state: str, message: str = "", **extra: Any) -> None:
        """Replace status.json; on a full disk a final state is still recorded (see below)."""
        if not self.writer:
            return
        extra.setdefault("world_size", distributed.current().world_size)
        write_status(self.path, state, message, **extra)

    @property
    def resume_hint(self) -> str:
        """What to tell the user when the run stops early: resume only when there is a state to resume."""
        if self.state_path.exists():
            return f"resume with: kdcam train --resume {self.run_id}"
        return "no epoch finished, so there is nothing to resume; start it again"

    def save_state(self, state: dict[str, Any]) -> None:
        if not self.writer:
            return
        atomic.write_with(self.state_path, lambda tmp: torch.save(state, tmp))

    def load_state(self) -> dict[str, Any]:
        """The resume state; ``weights_only`` so a tampered file cannot execute code."""
        if not self.state_path.exists():
            raise KdcamError(f"run {self.run_id} has no resume state (it stopped before finishing an epoch)")
        try:
            return torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling problem means the same to the user
            raise KdcamError(f"resume state {self.state_path} is unreadable: {exc}") from None
