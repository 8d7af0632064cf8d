"""The Train screen's runs: those the app is training (live epochs) merged with those on disk
(``runs/``, including runs a headless ``kdcam train`` writes, and ones that cannot be read)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.api.runs import EpochRecord, RunInfo, UnreadableRun
from engine.api.specs import DemoSpec, TrainSpec
from tui import format as fmt
from tui.jobboard import JobBoard, JobRecord

#: jobs whose epochs the Train screen shows
TRAIN_SPECS = (TrainSpec, DemoSpec)
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class DiskRun:
    """A run as read from ``runs/ID``: its state and epochs, or why it cannot be read."""

    state: str
    records: tuple[EpochRecord, ...] = ()
    problem: str | None = None
    world_size: int = 1

    @classmethod
    def of(cls, run: RunInfo) -> DiskRun:
        return cls(run.state, run.events, world_size=run.config.world_size)

    @classmethod
    def broken(cls, run: UnreadableRun) -> DiskRun:
        return cls(UNREADABLE, (), run.reason)


class RunBook:
    """Live runs (from the app's job board) and disk runs, by run id."""

    def __init__(self, board: JobBoard) -> None:
        self.board = board
        self.disk: dict[str, DiskRun] = {}

    def load(self, runs: Sequence[RunInfo], unreadable: Sequence[UnreadableRun]) -> None:
        self.disk = {run.run_id: DiskRun.of(run) for run in runs}
        self.disk.update({run.run_id: DiskRun.broken(run) for run in unreadable})

    def live(self) -> dict[str, tuple[JobRecord, list[EpochRecord]]]:
        runs = {}
        for record in self.board.of_type(*TRAIN_SPECS):
            for run_id, epochs in record.epochs.items():
                runs[run_id] = (record, epochs)
        return runs

    def ids(self) -> list[str]:
        return sorted(set(self.disk) | set(self.live()))

    def status(self, run_id: str) -> str:
        live = self.live().get(run_id)
        if live is not None and live[0].active and live[0].current_run == run_id:
            return "running"
        disk = self.disk.get(run_id)
        if disk is not None:
            return disk.state
        return "finished" if live is not None and live[0].state == "finished" else (live[0].state if live else "?")

    def records(self, run_id: str) -> Sequence[EpochRecord]:
        live = self.live().get(run_id)
        disk = self.disk.get(run_id)
        disk_records = disk.records if disk is not None else ()
        if live is not None and len(live[1]) >= len(disk_records):
            return live[1]
        return disk_records

    def ranks(self, run_id: str) -> str:
        """How a distributed run is shown in the header ("" for one process)."""
        disk = self.disk.get(run_id)
        size = disk.world_size if disk is not None else 1
        return f" · {size} ranks (world size {size})" if size > 1 else ""

    def problems(self) -> list[tuple[str, str]]:
        """(run, reason) of every unreadable run on disk."""
        return [(f"run {run_id}", disk.problem) for run_id, disk in sorted(self.disk.items())
                if disk.problem is not None]


def eta_seconds(record: EpochRecord) -> float | None:
    """Time left, from the run's mean epoch time so far (``elapsed`` counts from the run's start)."""
    if not record.epoch or not record.epochs or record.elapsed is None:
        return None
    return record.elapsed / record.epoch * (record.epochs - record.epoch)


def loss_terms(records: Sequence[EpochRecord]) -> list[str]:
    return sorted({term for r in records for term in r.losses})


def epoch_columns(terms: Sequence[str], validation: bool) -> tuple[str, ...]:
    """Accuracies as train / val / test (percent in the cells): short headers keep test in view at 80 columns."""
    return ("epoch", *terms, "train", *(("val",) if validation else ()), "test", "lr", "img/s", "ETA")


def epoch_row(record: EpochRecord, terms: Sequence[str], validation: bool) -> list[str]:
    return [
        f"{record.epoch}/{record.epochs if record.epochs is not None else '?'}",
        *(fmt.number(record.losses.get(term), 3) for term in terms),
        fmt.percent(record.train_acc),
        *((fmt.percent(record.val_acc),) if validation else ()),
        fmt.percent(record.test_acc),
        f"{record.lr:.2e}" if record.lr is not None else "—",
        f"{record.images_per_s:.0f}" if record.images_per_s is not None else "—",
        fmt.duration(eta_seconds(record)),
    ]


def total_loss(record: EpochRecord) -> float | None:
    return sum(record.losses.values()) if record.losses else None
