"""Is the process that wrote a record still running? Torch-free, for readers of runs and temporaries.

A pid alone is not enough: pids are reused, and a pid means nothing on another machine
(a workspace on a shared disk). So a writer records its pid, a host id and, where /proc
has it, its start time in clock ticks since boot; a reader calls the writer gone only when
it is sure: same host, and no process with that pid or one that started at another time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.api.atomic import host_id


def start_time(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/PID/stat), or None where /proc lacks it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # the command name (field 2) is in parentheses and may itself hold spaces or ')'
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def identity() -> dict[str, Any]:
    """What a writer records about itself so a later reader can tell whether it still runs."""
    pid = os.getpid()
    return {"pid": pid, "host": host_id(), "start_time": start_time(pid)}


def process_alive(pid: Any, host: Any = None, started: Any = None) -> bool:
    """False only when the writer is certainly gone: on this host, no process ``pid`` exists,
    or the one that does started at another time (the pid was reused). A record from another
    host, or one without a usable pid, counts as alive: kdcam cannot know, so it does not guess."""
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return True
    if host is not None and host != host_id():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return True
    if isinstance(started, int) and not isinstance(started, bool):
        now = start_time(pid)
        if now is not None and now != started:
            return False
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent is a zombie: it no longer runs or writes."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return True
