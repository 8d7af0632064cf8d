"""Events a job emits. Plain dataclasses: the TUI receives them on the engine thread and
re-posts them as Textual messages; the CLI renders them with Rich or as JSON lines."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.api.runs import EpochRecord


@dataclass(frozen=True)
class JobEvent:
    job_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__.lower(), **asdict(self)}


@dataclass(frozen=True)
class Started(JobEvent):
    kind: str
    title: str


@dataclass(frozen=True)
class Progress(JobEvent):
    """``done`` of ``total`` units of the current phase (batches, images, models)."""

    phase: str
    done: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class Epoch(JobEvent):
    """One finished epoch of a training run; ``record`` is the line written to events.jsonl."""

    run_id: str
    record: EpochRecord


@dataclass(frozen=True)
class Log(JobEvent):
    message: str
    level: str = "info"


@dataclass(frozen=True)
class Finished(JobEvent):
    result: Any = None  # the job's typed result (engine.api.results, CheckpointMeta, ...)


@dataclass(frozen=True)
class Failed(JobEvent):
    error: str
    traceback: str = ""


@dataclass(frozen=True)
class Cancelled(JobEvent):
    message: str = "cancelled"
