"""A workspace is a directory holding checkpoints/, runs/, analyses/ and exports/.

Everything here is torch-free: the TUI lists a workspace on its UI thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, root: str | Path | None = None) -> "Workspace":
        return cls(Path(root or ".").expanduser().resolve())

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

    def ensure(self) -> "Workspace":
        for path in (self.checkpoints, self.runs, self.analyses, self.exports):
            path.mkdir(parents=True, exist_ok=True)
        return self


def read_json(path: Path) -> dict[str, Any] | None:
    """Read a JSON file, or None when it is missing or unreadable (half-written by another tool)."""
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
