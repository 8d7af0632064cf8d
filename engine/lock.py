"""A per-directory writer lock (``fcntl.flock`` on ``DIR/.lock``). Torch-free.

Every writer of a checkpoint store takes it for the few milliseconds a change needs, so two
``kdcam train`` processes, an import and a rename never interleave their file operations. The
lock is re-entrant within a process (a store method may call another), the kernel drops it
when its holder dies (a SIGKILL never leaves the store locked), and a waiter gives up after a
bounded time (``KDCAM_LOCK_TIMEOUT`` seconds, default 120) with a message naming the holder.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import KdcamError

LOCK_FILE = ".lock"
DEFAULT_TIMEOUT_S = 120.0

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (fd, depth) for this process
_guard = threading.RLock()


def timeout_s() -> float:
    raw = os.environ.get("KDCAM_LOCK_TIMEOUT", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise KdcamError(f"KDCAM_LOCK_TIMEOUT must be a number of seconds, got {raw!r}") from None


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return "another process"
    return text or "another process"


@contextmanager
def locked(directory: Path, on_wait: Callable[[str], None] | None = None,
           timeout: float | None = None) -> Iterator[None]:
    """Hold the writer lock of ``directory`` (created if missing) for the ``with`` block."""
    path = (directory / LOCK_FILE).resolve()
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            try:
                yield
            finally:
                _held[path] = (fd, _held[path][1] - 1)
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise KdcamError(f"cannot write to {directory}: {exc.strerror or exc} (the writer lock {path} "
                             "cannot be created)") from None
        try:
            _acquire(fd, path, on_wait, timeout_s() if timeout is None else timeout)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n".encode(), 0)
            _held[path] = (fd, 1)
            try:
                yield
            finally:
                del _held[path]
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _acquire(fd: int, path: Path, on_wait: Callable[[str], None] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            raise KdcamError(f"{path.parent} is being written by {_holder(fd)} (lock {path}); gave up after "
                             f"{timeout:g} s. Wait for it to finish, or raise KDCAM_LOCK_TIMEOUT")
        if not told and on_wait is not None:
            on_wait(f"waiting for {path.parent}: {_holder(fd)} is writing to it")
            told = True
        time.sleep(0.05)
