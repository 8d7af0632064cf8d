"""Reading run directories (``runs/ID/``) without torch, validated, for the TUI and the CLI.

A run directory holds ``config.json`` (what was asked), ``events.jsonl`` (one object per
finished epoch), ``status.json`` (running | finished | failed | cancelled, with a message)
and ``state.pt`` (resume state; never read here). A run that says running but whose
process is gone (killed) reads as ``interrupted``.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.api import atomic
from engine.api.liveness import identity, process_alive
from engine.api.names import check_id
from engine.api.validate import Fields, read_json_file
from engine.api.workspace import Workspace
from engine.errors import KdcamError

STATES = ("running", "finished", "failed", "cancelled")
#: events.jsonl larger than this is not a kdcam run (one line per epoch is a few hundred bytes)
MAX_EVENTS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch, as the trainer wrote it to events.jsonl."""

    epoch: int
    epochs: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    train_acc: float | None = None
    test_acc: float | None = None
    lr: float | None = None
    images_per_s: float | None = None
    elapsed: float | None = None
    val_acc: float | None = None  # accuracy on the validation split (runs that have one)

    @classmethod
    def from_dict(cls, data: object, where: str = "epoch record") -> EpochRecord:
        f = Fields(data, where)
        losses = f.obj("losses") if f.has("losses") else None
        return cls(
            epoch=f.integer("epoch", minimum=0),
            epochs=f.opt_integer("epochs", minimum=0),
            losses={name: losses.number(name) for name in losses.data} if losses else {},
            train_acc=f.opt_number("train_acc"),
            test_acc=f.opt_number("test_acc"),
            lr=f.opt_number("lr"),
            images_per_s=f.opt_number("images_per_s"),
            elapsed=f.opt_number("elapsed"),
            val_acc=f.opt_number("val_acc"),
        )

    def to_dict(self) -> dict[str, Any]:
        data = {"epoch": self.epoch, "epochs": self.epochs, "losses": dict(self.losses), "train_acc": self.train_acc,
                "test_acc": self.test_acc, "lr": self.lr, "images_per_s": self.images_per_s,
                "elapsed": self.elapsed}
        if self.val_acc is not None:  # absent in runs without a validation split, as they wrote it
            data["val_acc"] = self.val_acc
        return data


def has_validation(records: Sequence[EpochRecord]) -> bool:
    """Whether a run chose its best epoch on a validation split (runs written before the split have
    none): every view that lists epochs then shows the validation accuracy too."""
    return any(r.val_acc is not None for r in records)


@dataclass(frozen=True)
class RunConfig:
    """What a run was asked to do (config.json); ``spec`` is the TrainSpec as recorded."""

    name: str
    role: str
    method: str | None
    arch: str
    teacher: str | None
    dataset: str
    seed: int
    spec: dict[str, Any]
    raw: dict[str, Any]
    world_size: int = 1  # processes that trained it (torchrun ranks)

    @classmethod
    def from_fields(cls, f: Fields) -> RunConfig:
        return cls(f.text("name"), f.text("role", choices=("teacher", "student")), f.opt_text("method"),
                   f.text("arch", ""), f.opt_text("teacher"), f.text("dataset", ""), f.integer("seed", 0),
                   dict(f.obj("spec").data), dict(f.data), f.integer("world_size", 1, minimum=1, maximum=1_000_000))


@dataclass(frozen=True)
class RunStatus:
    state: str
    message: str = ""
    pid: int | None = None
    host: str | None = None
    start_time: int | None = None
    updated: str = ""

    @classmethod
    def from_fields(cls, f: Fields) -> RunStatus:
        return cls(f.text("state", choices=STATES), f.text("message", ""), f.opt_integer("pid", minimum=0),
                   f.opt_text("host"), f.opt_integer("start_time", minimum=0), f.text("updated", ""))


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    path: Path
    config: RunConfig
    status: RunStatus
    events: tuple[EpochRecord, ...] = ()

    @property
    def state(self) -> str:
        """running | finished | failed | cancelled | interrupted (said running, its process is gone)."""
        if self.status.state == "running" and not process_alive(self.status.pid, self.status.host,
                                                                self.status.start_time):
            return "interrupted"
        return self.status.state

    @property
    def message(self) -> str:
        """The status message; for an interrupted run, how to continue it."""
        if self.state != "interrupted":
            return self.status.message
        if self.resumable:
            return f"interrupted (its process is gone); resume with: kdcam train --resume {self.run_id}"
        return "interrupted before its first epoch finished; nothing to resume, start it again"

    @property
    def resumable(self) -> bool:
        return self.state != "finished" and (self.path / "state.pt").exists()

    @property
    def last_epoch(self) -> int:
        return self.events[-1].epoch if self.events else 0

    @property
    def best_accuracy(self) -> float | None:
        accs = [e.test_acc for e in self.events if e.test_acc is not None]
        return max(accs) if accs else None


@dataclass(frozen=True)
class UnreadableRun:
    """A run directory kdcam cannot read, and why."""

    run_id: str
    path: Path
    reason: str


def _workspace(ws: Workspace | str | Path) -> Workspace:
    return ws if isinstance(ws, Workspace) else Workspace.open(ws)


def read_events(path: Path) -> list[EpochRecord]:
    """Every epoch record of events.jsonl; a torn *last* line (a crash mid-write) is skipped.

    Any other line that is not a valid record makes the file unreadable: it was not written by kdcam.
    """
    if not path.exists():
        return []
    try:
        if path.stat().st_size > MAX_EVENTS_BYTES:
            raise KdcamError(f"{path}: larger than {MAX_EVENTS_BYTES} bytes; not a kdcam events file")
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise KdcamError(f"{path}: cannot be read ({exc.strerror})") from None
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            data = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise KdcamError(f"{path}: line {number} is not JSON") from None
        records.append(EpochRecord.from_dict(data, f"{path}:{number}"))
    return records


def check_run_id(run_id: str) -> str:
    return check_id("run id", run_id)


def read_run(ws: Workspace | str | Path, run_id: str) -> RunInfo:
    """One run, validated; a clear error naming the file and field when any part is bad."""
    path = _workspace(ws).runs / check_run_id(run_id)
    if not (path / "config.json").exists():
        raise KdcamError(f"no run {run_id!r} in {path.parent} (missing config.json)")
    config = RunConfig.from_fields(Fields.of_file(path / "config.json"))
    status_path = path / "status.json"
    status = RunStatus.from_fields(Fields(read_json_file(status_path), str(status_path))) \
        if status_path.exists() else RunStatus("running", "no status.json")
    return RunInfo(run_id, path, config, status, tuple(read_events(path / "events.jsonl")))


def scan_runs(ws: Workspace | str | Path) -> tuple[list[RunInfo], list[UnreadableRun]]:
    """All runs, newest first (run ids start with their UTC start time), and the unreadable ones."""
    root = _workspace(ws).runs
    if not root.is_dir():
        return [], []
    runs, broken = [], []
    for path in sorted(root.iterdir(), reverse=True):
        if path.is_dir() and not path.name.startswith(".") and (path / "config.json").exists():
            try:
                runs.append(read_run(ws, path.name))
            except KdcamError as exc:
                broken.append(UnreadableRun(path.name, path, str(exc)))
    return runs, broken


#: the files whose change means a run changed (a new epoch, a new state)
_WATCHED = ("config.json", "status.json", "events.jsonl")


def runs_signature(ws: Workspace | str | Path) -> tuple[tuple[str | int, ...], ...]:
    """A cheap fingerprint of ``runs/`` (names, sizes and times of each run's files, from ``stat`` only):
    a screen polls it every second and re-reads the runs only when it changes."""
    root = _workspace(ws).runs
    try:
        entries = list(os.scandir(root))
    except OSError:
        return ()
    found: list[tuple[str | int, ...]] = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        stamp: list[str | int] = [entry.name]
        for name in _WATCHED:
            try:
                info = os.stat(os.path.join(entry.path, name))
            except OSError:
                stamp += [0, 0]
            else:
                stamp += [info.st_mtime_ns, info.st_size]
        found.append(tuple(stamp))
    return tuple(sorted(found, key=lambda item: str(item[0])))


def list_runs(ws: Workspace | str | Path) -> list[RunInfo]:
    """The readable runs, newest first (``scan_runs`` also names the unreadable ones)."""
    return scan_runs(ws)[0]


#: characters of a status message kept (an exception's text can be arbitrarily long)
MAX_MESSAGE = 2000


def _overwrite_in_place(path: Path, status: dict[str, Any]) -> bool:
    """On a full disk an atomic replace needs space it cannot get; rewriting the existing
    status.json inside the blocks it already holds needs none, so a run that failed for lack of
    space still says ``failed`` instead of ``running`` forever. Not atomic: used only then."""
    data = (json.dumps(status, indent=2, default=str) + "\n").encode()
    try:
        with open(path, "r+b") as handle:
            held = os.fstat(handle.fileno())
            if len(data) > max(held.st_blocks * 512, held.st_size):
                data = json.dumps({k: status[k] for k in ("state", "pid", "host", "start_time")}).encode()
            handle.write(data)
            handle.truncate(len(data))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        return False
    return True


def write_status(run_path: Path, state: str, message: str = "", **extra: Any) -> None:
    """Replace a run's status.json, naming this process (pid, host, start time) as its writer;
    on a full disk a final state is still recorded in place (see ``_overwrite_in_place``)."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    status = {"state": state, "message": message[:MAX_MESSAGE], **identity(), "updated": now, **extra}
    path = run_path / "status.json"
    try:
        atomic.write_json(path, status)
    except OSError as exc:
        if exc.errno != errno.ENOSPC or state == "running" or not _overwrite_in_place(path, status):
            raise
