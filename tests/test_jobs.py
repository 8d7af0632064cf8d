"""The job runner: ordered execution on one thread, events to subscribers, cancellation,
and errors turned into Failed events instead of a dead engine thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

from engine import runners
from engine.api.specs import Spec
from engine.errors import KdcamError
from engine.events import Cancelled, Failed, Finished, JobEvent, Progress, Started
from engine.jobs import JobContext, JobRunner


@dataclass(frozen=True)
class CountSpec(Spec):
    kind: ClassVar[str] = "count"
    steps: int
    fail_with: str = ""
    gate: threading.Event | None = None

    @property
    def title(self) -> str:
        return f"count to {self.steps}"


def count_job(spec: CountSpec, ctx: JobContext) -> int:
    for step in range(spec.steps):
        if spec.gate is not None:
            spec.gate.wait(5)
        ctx.check_cancelled()
        ctx.progress("counting", step + 1, spec.steps)
        if spec.fail_with == "user" and step == 1:
            raise KdcamError("step 2 is not allowed")
        if spec.fail_with == "bug" and step == 1:
            raise ZeroDivisionError("division by zero")
    return threading.current_thread().name == "kdcam-engine" and spec.steps


@pytest.fixture(autouse=True)
def count_runner() -> Iterator[None]:
    """The runner table knows the test's spec for the duration of each test."""
    runners.RUNNERS[CountSpec] = count_job
    yield
    del runners.RUNNERS[CountSpec]


def collect(runner: JobRunner) -> list[JobEvent]:
    events: list[JobEvent] = []
    runner.subscribe(events.append)
    return events


def test_jobs_run_in_order_on_the_engine_thread_and_report_progress() -> None:
    runner = JobRunner()
    events = collect(runner)
    first, second = runner.submit(CountSpec(3)), runner.submit(CountSpec(2))
    assert second.wait(10)
    assert (first.state, first.result) == ("finished", 3)
    assert (second.state, second.result) == ("finished", 2)
    kinds = [type(e).__name__ for e in events if e.job_id == first.job_id]
    assert kinds == ["Started", "Progress", "Progress", "Progress", "Finished"]
    assert events.index(next(e for e in events if isinstance(e, Finished))) < events.index(
        next(e for e in events if isinstance(e, Started) and e.job_id == second.job_id)
    )
    runner.shutdown()


def test_cancel_stops_a_running_job_and_skips_a_queued_one() -> None:
    runner = JobRunner()
    events = collect(runner)
    gate = threading.Event()
    running = runner.submit(CountSpec(100, gate=gate))
    queued = runner.submit(CountSpec(1))
    running.cancel()
    queued.cancel()
    gate.set()
    assert queued.wait(10)
    assert running.state == "cancelled" and queued.state == "cancelled"
    assert not any(isinstance(e, Progress) and e.job_id == running.job_id and e.done > 1 for e in events)
    assert sum(isinstance(e, Cancelled) for e in events) == 2
    runner.shutdown()


def test_failures_become_events_and_the_runner_keeps_working() -> None:
    runner = JobRunner()
    events = collect(runner)
    user_error = runner.submit(CountSpec(5, fail_with="user"))
    bug = runner.submit(CountSpec(5, fail_with="bug"))
    after = runner.submit(CountSpec(1))
    assert after.wait(10)
    failures = [e for e in events if isinstance(e, Failed)]
    assert [f.job_id for f in failures] == [user_error.job_id, bug.job_id]
    assert failures[0].error == "step 2 is not allowed" and failures[0].traceback == ""
    assert "ZeroDivisionError" in failures[1].error and "Traceback" in failures[1].traceback
    assert after.state == "finished"
    runner.shutdown()


def test_a_broken_subscriber_does_not_stop_other_subscribers() -> None:
    runner = JobRunner()

    def broken(event: JobEvent) -> None:
        raise RuntimeError("subscriber bug")

    runner.subscribe(broken)
    events = collect(runner)
    handle = runner.submit(CountSpec(1))
    assert handle.wait(10) and handle.state == "finished"
    assert any(isinstance(e, Finished) for e in events)
    runner.shutdown()
