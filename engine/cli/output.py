"""Shared CLI output: Rich consoles and running a job in the foreground with live progress.

CLI commands run their job on the calling thread (no runner thread is needed headless);
Ctrl-C sets the job's cancel flag, so the job stops within a batch and cleans up.
A reader that goes away (``kdcam train … | head``) ends the output, never the job: writes
to a closed pipe are discarded and the run carries on to its end.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine.api.specs import Spec
from engine.errors import CommandCancelled, JobCancelled, KdcamError
from engine.events import Epoch, JobEvent, Log
from engine.events import Progress as ProgressEvent
from engine.jobs import JobContext, run_inline


class PipeSafe:
    """A text stream whose writes survive the reader closing the pipe: on ``BrokenPipeError`` the
    file descriptor is pointed at /dev/null, so this and every later write (and the interpreter's
    final flush) succeed silently instead of failing the command or the run it is reporting."""

    def __init__(self, name: str):
        self._name = name  # "stdout" or "stderr", looked up on each call (tests replace sys.stdout)

    @property
    def stream(self) -> IO[str]:
        return getattr(sys, self._name)

    def write(self, text: str) -> int:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self._discard()
        return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no real descriptor (a test's StringIO): nothing to redirect
            pass

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: what Rich asks a file
        return getattr(self.stream, name)


STDOUT = PipeSafe("stdout")
STDERR = PipeSafe("stderr")


def console() -> Console:
    return Console(file=STDOUT)  # type: ignore[arg-type]  # a file-like object is all Rich needs


def error_console() -> Console:
    return Console(file=STDERR, stderr=True)  # type: ignore[arg-type]


def jsonable(obj: Any) -> Any:
    """Typed results as JSON: their own ``to_dict`` where they have one, dataclass fields otherwise."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


def print_json(obj: Any) -> None:
    STDOUT.write(json.dumps(obj, indent=2, default=jsonable) + "\n")


#: an entry a listing could not read (a run, an analysis, a checkpoint): its id or name, its path, the reason
Unreadable = tuple[str, Path, str]


def unreadable_json(entries: Iterable[Unreadable]) -> list[dict[str, str]]:
    """The unreadable entries of a ``list --json``, so scripts see them too (never hidden)."""
    return [{"id": name, "path": str(path), "reason": reason} for name, path, reason in entries]


def print_unreadable(kind: str, entries: Iterable[Unreadable]) -> None:
    """Each unreadable entry named on stderr with the reason, never hidden."""
    for name, _, reason in entries:
        error_console().print(f"[red]unreadable {kind} {name}:[/] {reason}", highlight=False, soft_wrap=True)


def confirmed(question: str, yes: bool, refusal: str, declined: str) -> bool:
    """Whether to go ahead with something that cannot be undone: ``--yes``, or "y" typed at a
    terminal. Without a terminal it refuses with ``refusal`` (a script never deletes or trusts by
    accident); a "no" prints ``declined``."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise KdcamError(refusal)
    if input(f"{question} [y/N] ").strip().lower() in ("y", "yes"):
        return True
    console().print(declined)
    return False


def _os_error(exc: OSError) -> KdcamError:
    """A file-system failure (full disk, read-only, permissions) as one message naming the file."""
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return KdcamError(f"{where}no space left on the device; the run's status says where it stopped")
    return KdcamError(f"{where}{exc.strerror or exc}")


def run_job(spec: Spec, as_json: bool = False, on_event: Any = None, quiet: bool = False) -> Any:
    """Run ``spec`` in the foreground. Progress goes to stderr (Rich) or stdout (JSON lines);
    ``quiet`` shows none (short chores whose result is the whole answer)."""
    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(signum: int, frame: Any) -> None:
        if cancel.is_set():  # second Ctrl-C: stop hard
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        cancel.set()
        error_console().print("[yellow]cancelling after the current batch… (Ctrl-C again to abort)[/]")

    signal.signal(signal.SIGINT, interrupt)
    try:
        if quiet:
            return run_inline(spec, JobContext("cli", on_event or (lambda event: None), cancel))
        if as_json:
            def emit(event: JobEvent) -> None:
                STDOUT.write(json.dumps(event.to_dict(), default=jsonable) + "\n")
                if on_event:
                    on_event(event)

            return run_inline(spec, JobContext("cli", emit, cancel))
        return _run_with_rich(spec, cancel, on_event)
    except JobCancelled:
        raise CommandCancelled("cancelled; files written so far are consistent") from None
    except OSError as exc:
        raise _os_error(exc) from None
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_with_rich(spec: Spec, cancel: threading.Event, on_event: Any) -> Any:
    err = error_console()
    if not err.is_terminal:
        return _run_with_lines(spec, cancel, on_event)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        console=err,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def emit(event: JobEvent) -> None:
            if isinstance(event, ProgressEvent):
                task = tasks.get(event.phase)
                if task is None:
                    task = tasks[event.phase] = progress.add_task(event.phase, total=event.total, note="")
                progress.update(task, completed=event.done, total=event.total, note=event.message)
            elif isinstance(event, Log):
                style = {"warning": "yellow", "error": "red"}.get(event.level, "dim")
                progress.console.print(f"[{style}]{event.message}[/]", highlight=False)
            elif isinstance(event, Epoch):
                progress.console.print(_epoch_line(event), highlight=False)
            if on_event:
                on_event(event)

        return run_inline(spec, JobContext("cli", emit, cancel))


def _epoch_text(event: Epoch) -> str:
    """An epoch as plain text, after the run id."""
    r = event.record
    losses = " ".join(f"{k}={v:.4f}" for k, v in r.losses.items())
    val = f" val {r.val_acc:.2%}" if r.val_acc is not None else ""  # what the best epoch is chosen on
    return (f"epoch {r.epoch}/{r.epochs} {losses} train {r.train_acc or 0:.2%}{val} test {r.test_acc or 0:.2%} "
            f"lr {r.lr or 0:.4g} {r.images_per_s or 0:.0f} img/s")


def _epoch_line(event: Epoch) -> str:
    return f"[cyan]{event.run_id}[/] {_epoch_text(event)}"


#: piped progress is written when a phase starts, at every tenth of it and when it ends
PLAIN_STEPS = 10


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _run_with_lines(spec: Spec, cancel: threading.Event, on_event: Any) -> Any:
    """Progress for a pipe or a log file: whole plain lines, never wrapped or cut. Rich renders for a
    terminal width (80 columns when there is none), which wraps epoch lines and truncates progress
    cells (``79/…``) in ``make run | tee log``; a pipe has no width, so each event is one line."""
    started = time.monotonic()
    shown: dict[str, int] = {}  # phase -> last tenth written

    def line(text: str) -> None:
        STDERR.write(text + "\n")

    def emit(event: JobEvent) -> None:
        if isinstance(event, ProgressEvent):
            step = PLAIN_STEPS * event.done // event.total if event.total > 0 else 0
            if event.phase not in shown or step > shown[event.phase]:
                shown[event.phase] = step
                note = f" {event.message}" if event.message else ""
                line(f"{event.phase} {event.done}/{event.total} {_clock(time.monotonic() - started)}{note}")
        elif isinstance(event, Log):
            line(event.message if event.level == "info" else f"{event.level}: {event.message}")
        elif isinstance(event, Epoch):
            line(f"{event.run_id} {_epoch_text(event)}")
        if on_event:
            on_event(event)

    return run_inline(spec, JobContext("cli", emit, cancel))
