"""What the UI knows of every job it submitted, kept on the app (not on a screen) so that
leaving a screen and coming back loses nothing. Updated on the UI thread only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from engine.api.runs import EpochRecord
from engine.api.specs import Spec
from engine.errors import KdcamError
from engine.events import Cancelled, Epoch, Failed, Finished, JobEvent, Log, Progress, Started
from engine.jobs import JobHandle

FINAL_STATES = ("finished", "failed", "cancelled")


class EngineEvent(Message):
    """A job event re-posted from the engine thread into Textual's message queue."""

    def __init__(self, event: JobEvent) -> None:
        super().__init__()
        self.event = event


@dataclass
class JobRecord:
    """One submitted job as the screens show it."""

    handle: JobHandle
    state: str = "queued"
    progress: Progress | None = None
    epochs: dict[str, list[EpochRecord]] = field(default_factory=dict)  # run id -> epoch records
    logs: list[str] = field(default_factory=list)
    error: str | None = None
    result: Any = None

    @property
    def job_id(self) -> str:
        return self.handle.job_id

    @property
    def spec(self) -> Spec:
        return self.handle.spec

    @property
    def kind(self) -> str:
        return self.handle.spec.kind

    @property
    def title(self) -> str:
        return self.handle.spec.title

    @property
    def active(self) -> bool:
        return self.state not in FINAL_STATES

    @property
    def current_run(self) -> str | None:
        """The run whose epochs arrived last (a train job trains a teacher, then students)."""
        return next(reversed(self.epochs), None)


class JobBoard:
    """Job records by id, in submission order."""

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}

    def add(self, handle: JobHandle) -> JobRecord:
        record = JobRecord(handle)
        self.records[handle.job_id] = record
        return record

    def get(self, job_id: str) -> JobRecord | None:
        return self.records.get(job_id)

    def of_type(self, *spec_types: type[Spec]) -> list[JobRecord]:
        """The records of jobs whose spec is one of ``spec_types``, in submission order."""
        return [r for r in self.records.values() if isinstance(r.spec, spec_types)]

    def running(self) -> JobRecord | None:
        return next((r for r in self.records.values() if r.state == "running"), None)

    def apply(self, event: JobEvent) -> JobRecord | None:
        """Fold one event into its record; returns the record (None for a foreign job)."""
        record = self.records.get(event.job_id)
        if record is None:
            return None
        if isinstance(event, Started):
            record.state = "running"
        elif isinstance(event, Progress):
            record.progress = event
        elif isinstance(event, Epoch):
            epoch = epoch_record(event.record)
            if epoch is not None:
                record.epochs.setdefault(event.run_id, []).append(epoch)
        elif isinstance(event, Log):
            record.logs.append(event.message)
        elif isinstance(event, Finished):
            record.state, record.result = "finished", event.result
        elif isinstance(event, Failed):
            record.state, record.error = "failed", event.error
        elif isinstance(event, Cancelled):
            record.state = "cancelled"
        return record


def epoch_record(record: object) -> EpochRecord | None:
    """An Epoch event's record, typed; one that does not validate is dropped (the run's file shows it)."""
    if isinstance(record, EpochRecord):
        return record
    try:
        return EpochRecord.from_dict(record, "epoch event")
    except KdcamError:
        return None
