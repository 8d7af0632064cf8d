"""Export folders (``exports/NAME/``) and their manifest ``kdcam-export.json``: typed, validated. Torch-free.

The manifest is written last into every export; it marks the folder as kdcam's own (the only
kind ``--overwrite`` may replace) and lets anyone check the export is complete (each file's
size and sha256).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.api.names import check_id
from engine.api.validate import Fields, read_json_file
from engine.api.workspace import Workspace
from engine.errors import KdcamError

MANIFEST = "kdcam-export.json"
MANIFEST_SCHEMA = "kdcam-export"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_FILES = 100_000
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the export folder
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportManifest:
    """What an export holds and which analysis it came from."""

    folder: Path
    analysis: str
    files: tuple[ExportedFile, ...]

    @classmethod
    def from_fields(cls, folder: Path, f: Fields) -> ExportManifest:
        f.text("schema", choices=(MANIFEST_SCHEMA,))
        version = f.integer("version", minimum=1)
        if version > MANIFEST_VERSION:
            raise f.error("version", f"at most {MANIFEST_VERSION} (upgrade kdcam)", version)
        files = []
        for entry in f.objects("files"):
            path = entry.text("path")
            if path.startswith(("/", "\\")) or ".." in Path(path).parts:
                raise entry.error("path", "a path inside the export folder", path)
            digest = entry.text("sha256")
            if not _SHA256.fullmatch(digest):
                raise entry.error("sha256", "64 lowercase hex digits", digest)
            files.append(ExportedFile(path, entry.integer("bytes", minimum=0), digest))
        if len(files) > MAX_FILES:
            raise f.error("files", f"at most {MAX_FILES} entries", f"{len(files)} entries")
        return cls(folder, f.text("analysis"), tuple(files))


def manifest_document(analysis: str, files: dict[str, bytes]) -> dict[str, Any]:
    """The manifest kdcam writes for an export holding ``files`` (relative path -> content)."""
    return {"schema": MANIFEST_SCHEMA, "version": MANIFEST_VERSION, "analysis": analysis,
            "files": [{"path": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                      for name, data in files.items()]}


def read_manifest(folder: Path) -> ExportManifest:
    """The folder's validated manifest; a ``KdcamError`` naming the file when it is missing or bad."""
    path = folder / MANIFEST
    if not path.is_symlink() and not path.exists():
        raise KdcamError(f"{folder}: not a kdcam export (no {MANIFEST})")
    document = read_json_file(path, max_bytes=MAX_MANIFEST_BYTES, follow_symlinks=False)  # a link is no manifest
    return ExportManifest.from_fields(folder, Fields(document, str(path)))


def is_export(folder: Path) -> bool:
    """True only for a folder holding a valid kdcam manifest: only such a folder is kdcam's to replace."""
    try:
        read_manifest(folder)
    except KdcamError:
        return False
    return True


def scan_exports(ws: Workspace | str | Path) -> list[ExportManifest]:
    """Every export under ``exports/`` (folders with a valid manifest), by name; other folders are not exports."""
    workspace = ws if isinstance(ws, Workspace) else Workspace.open(ws)
    if not workspace.exports.is_dir():
        return []
    found = []
    for folder in sorted(workspace.exports.iterdir()):
        if folder.is_dir() and not folder.name.startswith(".") and not folder.is_symlink():
            try:  # a folder whose name is not a name kdcam writes ('[b]x') is not one of its exports
                found.append(read_manifest(folder.parent / check_id("export name", folder.name)))
            except KdcamError:
                continue
    return found


def list_exports(ws: Workspace | str | Path) -> list[str]:
    """Names of the exports (valid manifest) in natural order, for lists: ``exports/panels`` (browser
    PNGs) and other folders are not exports."""
    from engine.api.display import natural_sorted

    return natural_sorted((manifest.folder.name for manifest in scan_exports(ws)), key=str)
