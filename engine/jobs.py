"""The job runner: one background worker thread that runs every engine job in turn.

GPU work is serialised by construction (one worker). A job is a spec dataclass of
``engine.api.specs``; ``engine.runners.RUNNERS`` names the function that runs it, which
imports its engine module on the worker thread, so torch is never imported on the caller's thread.
Cancellation is cooperative: jobs call ``ctx.check_cancelled()`` at least once per batch.
"""

from __future__ import annotations

import itertools
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.api.specs import Spec
from engine.errors import JobCancelled, KdcamError
from engine.events import Cancelled, Failed, Finished, JobEvent, Log, Progress, Started

Subscriber = Callable[[JobEvent], None]


class JobContext:
    """Handed to a job function: emits events and carries the cancel flag."""

    def __init__(self, job_id: str, emit: Callable[[JobEvent], None], cancel: threading.Event):
        self.job_id = job_id
        self._emit = emit
        self._cancel = cancel

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled()

    def emit(self, event: JobEvent) -> None:
        self._emit(event)

    def progress(self, phase: str, done: int, total: int, message: str = "") -> None:
        self._emit(Progress(self.job_id, phase, done, total, message))

    def log(self, message: str, level: str = "info") -> None:
        self._emit(Log(self.job_id, message, level))


def run_inline(spec: Spec, ctx: JobContext) -> Any:
    """Run ``spec`` on the current thread (the worker, or the CLI) through ``engine.runners.RUNNERS``."""
    from engine.runners import run_spec  # the table imports JobContext from here: resolved at first use

    return run_spec(spec, ctx)


@dataclass
class JobHandle:
    job_id: str
    spec: Spec
    state: str = "queued"  # queued | running | finished | failed | cancelled
    result: Any = None
    error: str | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Ask the job to stop; a queued job never starts, a running one stops within a batch."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class JobRunner:
    """One worker thread, a FIFO of jobs, and subscribers that receive every event."""

    def __init__(self) -> None:
        self._queue: queue.Queue[JobHandle | None] = queue.Queue()
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._jobs: dict[str, JobHandle] = {}
        self._thread = threading.Thread(target=self._work, name="kdcam-engine", daemon=True)
        self._thread.start()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register ``callback`` (called on the engine thread); returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def submit(self, spec: Spec) -> JobHandle:
        handle = JobHandle(job_id=f"job-{next(self._ids)}", spec=spec)
        with self._lock:
            self._jobs[handle.job_id] = handle
        self._queue.put(handle)
        return handle

    def jobs(self) -> list[JobHandle]:
        with self._lock:
            return list(self._jobs.values())

    def shutdown(self, cancel_running: bool = True, timeout: float | None = 10.0) -> None:
        if cancel_running:
            for handle in self.jobs():
                handle.cancel()
        self._queue.put(None)
        self._thread.join(timeout)

    def _publish(self, event: JobEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken subscriber must not kill the engine thread
                traceback.print_exc()

    def _work(self) -> None:
        while (handle := self._queue.get()) is not None:
            self._run(handle)

    def _run(self, handle: JobHandle) -> None:
        spec = handle.spec
        if handle._cancel.is_set():
            handle.state = "cancelled"
            self._publish(Cancelled(handle.job_id, "cancelled before it started"))
            handle._done.set()
            return
        handle.state = "running"
        self._publish(Started(handle.job_id, spec.kind, spec.title))
        ctx = JobContext(handle.job_id, self._publish, handle._cancel)
        try:
            handle.result = run_inline(spec, ctx)
            handle.state = "finished"
            self._publish(Finished(handle.job_id, handle.result))
        except JobCancelled:
            handle.state = "cancelled"
            self._publish(Cancelled(handle.job_id))
        except KdcamError as exc:
            handle.state, handle.error = "failed", str(exc)
            self._publish(Failed(handle.job_id, str(exc)))
        except Exception as exc:  # unexpected: keep the traceback for the log view
            handle.state, handle.error = "failed", f"{type(exc).__name__}: {exc}"
            self._publish(Failed(handle.job_id, handle.error, traceback.format_exc()))
        finally:
            handle._done.set()
