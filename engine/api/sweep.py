"""Remove what killed kdcam processes left behind: hidden ``.NAME.kdtmp-…`` temporaries.

An atomic write works under a temporary name (see :mod:`engine.api.atomic`); a SIGKILL, a power
cut or an out-of-memory kill leaves that temporary forever. When a workspace is opened for
writing, every kdcam temporary whose writer is certainly gone (same host, pid dead or reused,
see :mod:`engine.api.liveness`) and that is older than ``min_age`` seconds is removed, and an old
export set aside by the two-rename fallback is put back if its name is empty. Nothing that
does not match kdcam's own pattern is touched, and symbolic links are never followed.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

from engine.api.atomic import TEMP_NAME
from engine.api.liveness import process_alive

#: seconds a temporary must have been left alone before a dead writer's one is removed
MIN_AGE = 60.0
#: how far below the workspace root temporaries are looked for (runs/ID/, exports/NAME/figures/)
MAX_DEPTH = 3
#: folders of a workspace that hold no kdcam temporaries worth a walk (datasets can be huge)
SKIPPED = frozenset({"data"})


def sweep_directory(directory: Path, min_age: float = MIN_AGE, only: str | None = None) -> list[Path]:
    """Sweep the direct entries of ``directory`` (``only``: just the temporaries of that name);
    returns what was removed or restored. Errors are ignored: a sweep never stops a command."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if match is None or (only is not None and match["name"] != only):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if now - info.st_mtime < min_age or process_alive(int(match["pid"]), match["host"]):
            continue
        path = Path(entry.path)
        target = path.parent / match["name"]
        try:
            if match["kind"] == "kdold" and not os.path.lexists(target):
                os.rename(path, target)  # killed between the two renames of the fallback swap
            elif stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def sweep_workspace(root: Path, min_age: float = MIN_AGE) -> list[Path]:
    """Sweep ``root`` and the folders below it down to ``MAX_DEPTH`` (``data/`` skipped)."""
    removed: list[Path] = []
    pending = [(root, 0)]
    while pending:
        directory, depth = pending.pop()
        removed += sweep_directory(directory, min_age)
        if depth >= MAX_DEPTH:
            continue
        try:
            children = [e for e in os.scandir(directory)
                        if e.is_dir(follow_symlinks=False) and TEMP_NAME.match(e.name) is None
                        and not (depth == 0 and e.name in SKIPPED)]
        except OSError:
            continue
        pending += [(Path(child.path), depth + 1) for child in children]
    return removed
