"""A workspace is a directory holding checkpoints/, runs/, analyses/ and exports/.

Everything here is torch-free: the TUI lists a workspace on its UI thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.api.sweep import sweep_workspace
from engine.errors import KdcamError


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, root: str | Path | None = None) -> Workspace:
        given = Path(root or ".").expanduser()
        try:
            return cls(given.resolve())
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop (RuntimeError before Python 3.13)
            raise KdcamError(f"workspace {given}: cannot resolve the path ({exc})") from None

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def analyses(self) -> Path:
        return self.root / "analyses"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def data(self) -> Path:
        """Where dataset files (CIFAR, MNIST) are looked for and downloaded to."""
        return self.root / "data"

    def ensure(self) -> Workspace:
        """Open for writing: create the folders, with one clear error when that is impossible (a
        file, a read-only disk, a symlink loop), and sweep temporaries killed commands left."""
        if self.root.exists() and not self.root.is_dir():
            raise KdcamError(f"workspace {self.root} is not a directory")
        for path in (self.checkpoints, self.runs, self.analyses, self.exports):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise KdcamError(f"workspace {self.root}: cannot create {path.name}/ "
                                 f"({exc.strerror or exc})") from None
        sweep_workspace(self.root)
        return self


def read_json(path: Path) -> dict[str, Any] | None:
    """Read a JSON file, or None when it is missing or unreadable (half-written by another tool)."""
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
