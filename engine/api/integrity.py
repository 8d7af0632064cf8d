"""What is in a checkpoint store, besides its complete checkpoints. Torch-free.

A checkpoint is two files, ``NAME.safetensors`` + ``NAME.json``; every change to them goes
through a journal (``.journal/OP.op``, see ``engine.checkpoints.store``). ``scan_store`` reports
everything that is not a complete checkpoint, so nothing a user owns is ever hidden: weights
without metadata and metadata without weights (orphans), pairs whose two files come from
different writes (mismatched), changes a killed writer left half-done (pending journals, rolled
forward by the next writer or ``kdcam checkpoints doctor --repair``) and temporaries.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api.checkpoints import META_SUFFIX, WEIGHTS_SUFFIX
from engine.api.names import check_id, is_valid_id
from engine.api.runs import read_run
from engine.errors import KdcamError

JOURNAL_DIR = ".journal"
RESERVATIONS_DIR = ".reservations"
ORPHANS_DIR = ".orphans"
JOURNAL_SUFFIX = ".op"
#: the key shared by a checkpoint's JSON and its weights' safetensors header: both halves of one write
UNIT_KEY = "weights_id"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
MAX_JOURNAL_BYTES = 1024 * 1024

Step = tuple[str, ...]  # ("replace", src, dst) | ("unlink", path); paths relative to the store


@dataclass
class Problem:
    """One file (or pair) that is not part of a complete checkpoint, and why."""

    path: Path
    kind: str  # orphan-weights | orphan-meta | unreadable-meta | mismatched | temporary | journal | reservation
    detail: str


@dataclass
class StoreReport:
    complete: list[str] = field(default_factory=list)
    orphans: list[Problem] = field(default_factory=list)  # orphans, unreadable and mismatched pairs
    pending: list[Path] = field(default_factory=list)  # journals of changes not yet rolled forward
    temporaries: list[Problem] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not (self.orphans or self.pending or self.temporaries)

    def problems(self) -> list[Problem]:
        journals = [Problem(p, "journal", "a change interrupted half-way; the next writer rolls it forward")
                    for p in self.pending]
        return journals + self.orphans + self.temporaries


def _store_path(directory: Path, rel: object) -> Path:
    """A journal's path, refused unless it is a file directly in the store or in its journal folder."""
    if not isinstance(rel, str):
        raise KdcamError(f"journal path {rel!r} is not text")
    parts = rel.split("/")
    if len(parts) == 2 and parts[0] == JOURNAL_DIR:
        check_id("journal file", parts[1])
    elif len(parts) == 1:
        check_id("checkpoint file", rel)
    else:
        raise KdcamError(f"journal path {rel!r} is outside the store")
    return directory / rel


def read_journal(path: Path) -> list[Step]:
    """The steps of one journal file, every path checked to stay inside the store."""
    directory = path.parent.parent
    try:
        if path.stat().st_size > MAX_JOURNAL_BYTES:
            raise KdcamError(f"journal {path} is larger than {MAX_JOURNAL_BYTES} bytes")
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KdcamError(f"journal {path} is unreadable: {exc}") from None
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list):
        raise KdcamError(f"journal {path} has no list of steps")
    out: list[Step] = []
    for step in steps:
        if isinstance(step, list) and len(step) == 3 and step[0] == "replace":
            _store_path(directory, step[1]), _store_path(directory, step[2])
        elif isinstance(step, list) and len(step) == 2 and step[0] == "unlink":
            _store_path(directory, step[1])
        else:
            raise KdcamError(f"journal {path} has an unknown step {step!r}")
        out.append(tuple(step))
    return out


def weights_header(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (its header only; sizes checked before reading)."""
    try:
        with path.open("rb") as handle:
            size_bytes = handle.read(8)
            if len(size_bytes) != 8:
                raise KdcamError(f"{path} is too short to be a safetensors file")
            (size,) = struct.unpack("<Q", size_bytes)
            if size > MAX_HEADER_BYTES or size > path.stat().st_size - 8:
                raise KdcamError(f"{path} claims a {size}-byte header; the file cannot hold it")
            header = json.loads(handle.read(size))
    except (OSError, ValueError) as exc:
        raise KdcamError(f"{path} has an unreadable safetensors header: {exc}") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _unit_of_json(path: Path) -> tuple[bool, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False, None
    return isinstance(data, dict), data.get(UNIT_KEY) if isinstance(data, dict) else None


def _owner(reservation: Path) -> str | None:
    try:
        data = json.loads(reservation.read_text())
    except (OSError, ValueError):
        return None
    owner = data.get("owner") if isinstance(data, dict) else None
    return owner if isinstance(owner, str) and is_valid_id("run id", owner) else None


def _stopped_for_good(workspace: Path, run_id: str) -> bool:
    """The run is not running and cannot be resumed (no epoch finished), so it will never use its names."""
    try:
        run = read_run(workspace, run_id)
    except KdcamError:
        return False  # an unreadable run is reported by the runs list; its names stay held
    return run.state != "running" and not run.resumable


def scan_store(directory: str | Path) -> StoreReport:
    """Classify every file of the store; reads JSON and safetensors headers only (fast, torch-free)."""
    directory = Path(directory)
    report = StoreReport()
    if not directory.is_dir():
        return report
    covered: set[str] = set()  # files a pending journal will still move or remove
    journal_dir = directory / JOURNAL_DIR
    if journal_dir.is_dir():
        for path in sorted(journal_dir.iterdir()):
            if path.suffix == JOURNAL_SUFFIX and not path.name.startswith("."):
                report.pending.append(path)
                try:
                    covered.update(part for step in read_journal(path) for part in step[1:])
                except KdcamError:
                    pass
        for path in sorted(journal_dir.iterdir()):
            if path not in report.pending and f"{JOURNAL_DIR}/{path.name}" not in covered:
                report.temporaries.append(Problem(path, "temporary", "left by a writer that was stopped"))
    reservations = directory / RESERVATIONS_DIR
    if reservations.is_dir():  # a name held for a run that no longer exists would be skipped forever
        for path in sorted(reservations.iterdir()):
            owner = _owner(path)
            if owner is None or not (directory.parent / "runs" / owner / "config.json").is_file():
                report.temporaries.append(Problem(path, "reservation", f"held for run {owner}, which does not exist"))
            elif _stopped_for_good(directory.parent, owner):
                report.temporaries.append(Problem(path, "reservation",
                                                  f"held for run {owner}, which stopped with nothing to resume"))
    names: set[str] = set()
    for path in directory.iterdir():
        if path.name.startswith("."):
            if path.name.endswith(".tmp"):
                report.temporaries.append(Problem(path, "temporary", "left by a writer that was stopped"))
            continue
        for suffix in (WEIGHTS_SUFFIX, META_SUFFIX):
            if path.name.endswith(suffix) and path.name not in covered:
                names.add(path.name[: -len(suffix)])
    for name in sorted(names):
        weights, meta = directory / f"{name}{WEIGHTS_SUFFIX}", directory / f"{name}{META_SUFFIX}"
        if not meta.exists():
            report.orphans.append(Problem(weights, "orphan-weights", f"weights without {meta.name}"))
            continue
        if not weights.exists():
            report.orphans.append(Problem(meta, "orphan-meta", f"metadata without {weights.name}"))
            continue
        readable, unit = _unit_of_json(meta)
        if not readable:
            report.orphans.append(Problem(meta, "unreadable-meta", "metadata is not a JSON object"))
            continue
        if unit is not None:
            try:
                stored = weights_header(weights).get(UNIT_KEY)
            except KdcamError as exc:
                report.orphans.append(Problem(weights, "mismatched", str(exc)))
                continue
            if stored != unit:
                report.orphans.append(Problem(weights, "mismatched",
                                              f"weights are from write {stored}, {meta.name} from write {unit}"))
                continue
        report.complete.append(name)
    return report
