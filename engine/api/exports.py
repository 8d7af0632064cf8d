"""Which folders under ``exports/`` are kdcam exports. Torch-free.

An export is marked by its manifest; other folders there (``panels/`` of single browser
panels, previews, the user's own files) are not exports and are not listed as such.
"""

from __future__ import annotations

from pathlib import Path

from engine.api.display import natural_sorted
from engine.api.workspace import Workspace

#: the file every export holds (written last by engine.reports.export)
MANIFEST = "kdcam-export.json"


def list_exports(ws: Workspace | str | Path) -> list[str]:
    """Names of the export folders (holding a manifest), in natural order; hidden temporaries skipped."""
    folder = (ws if isinstance(ws, Workspace) else Workspace.open(ws)).exports
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir()
             if not p.name.startswith(".") and p.is_dir() and not p.is_symlink() and (p / MANIFEST).is_file()]
    return natural_sorted(names, key=str)
