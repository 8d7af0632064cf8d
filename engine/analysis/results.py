"""Reading finished analyses (``analyses/ID/``) without torch: the TUI and reports use this.

The format is documented in ``docs/RESULTS_SCHEMA.md``. Large arrays are memory-mapped so
browsing ten thousand images touches only the rows on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import KdcamError
from engine.names import check_id
from engine.workspace import Workspace, read_json

SCHEMA = "kdcam.analysis"
SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class AnalysisInfo:
    """One line of an analysis list: enough to show and pick it without loading arrays."""

    id: str
    path: Path
    created: str
    teacher: str
    students: tuple[str, ...]
    dataset: str
    n: int
    method: str
    target: str
    bands: dict[str, str]  # student -> overall band


def _workspace(ws: Workspace | str | Path) -> Workspace:
    return ws if isinstance(ws, Workspace) else Workspace.open(ws)


def analysis_dir(ws: Workspace | str | Path, analysis_id: str) -> Path:
    """The directory of analysis ``analysis_id``; refuses ids that would leave ``analyses/``."""
    return _workspace(ws).analyses / check_id("analysis id", analysis_id)


def list_analyses(ws: Workspace | str | Path) -> list[AnalysisInfo]:
    """Every complete analysis of the workspace, newest first. Unreadable ones are skipped."""
    root = _workspace(ws).analyses
    if not root.is_dir():
        return []
    infos = []
    for path in root.iterdir():
        if path.name.startswith(".") or not path.is_dir():
            continue  # temporary directories of analyses still being written
        results = read_json(path / RESULTS_FILE)
        if results is None or results.get("schema") != SCHEMA:
            continue
        infos.append(_info(path, results))
    return sorted(infos, key=lambda info: (info.created, info.id), reverse=True)


def _info(path: Path, results: dict[str, Any]) -> AnalysisInfo:
    spec = results.get("spec", {})
    dataset = results.get("dataset", {})
    return AnalysisInfo(
        id=path.name,
        path=path,
        created=results.get("created", ""),
        teacher=spec.get("teacher", ""),
        students=tuple(spec.get("students", ())),
        dataset=dataset.get("spec", spec.get("dataset", "")),
        n=int(dataset.get("n", 0)),
        method=spec.get("method", ""),
        target=spec.get("target", ""),
        bands={pair["student"]: pair.get("band", "") for pair in results.get("pairs", [])},
    )


def load_results(ws: Workspace | str | Path, analysis_id: str) -> dict[str, Any]:
    """The parsed ``results.json``; a clear error when missing, unreadable or too new."""
    path = analysis_dir(ws, analysis_id) / RESULTS_FILE
    results = read_json(path)
    if results is None:
        raise KdcamError(f"no readable analysis results at {path}")
    if results.get("schema") != SCHEMA:
        raise KdcamError(f"{path} is not a kdcam analysis (schema {results.get('schema')!r})")
    version = results.get("version", 0)
    if version > SCHEMA_VERSION:
        raise KdcamError(
            f"{path} has results schema version {version}; this kdcam reads up to {SCHEMA_VERSION} — upgrade kdcam"
        )
    return results


def _open_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise KdcamError(f"missing analysis file {path}")
    return np.load(path, mmap_mode="r")


def load_maps(ws: Workspace | str | Path, analysis_id: str, model: str) -> np.ndarray:
    """uint8 N x H x W maps of ``model`` (memory-mapped; divide by 255 for [0, 1])."""
    return _open_npy(analysis_dir(ws, analysis_id) / "maps" / f"{_safe(model)}.npy")


def load_images(ws: Workspace | str | Path, analysis_id: str) -> np.ndarray:
    """uint8 N x H x W x C analysed images (memory-mapped)."""
    return _open_npy(analysis_dir(ws, analysis_id) / "images.npy")


def load_masks(ws: Workspace | str | Path, analysis_id: str) -> np.ndarray | None:
    """bool N x H x W object masks, or None when the dataset has none."""
    path = analysis_dir(ws, analysis_id) / "masks.npy"
    return np.load(path, mmap_mode="r") if path.is_file() else None


def load_extra_maps(ws: Workspace | str | Path, analysis_id: str, kind: str, model: str) -> np.ndarray | None:
    """Maps beyond the main ones: ``kind`` is ``attention``, ``sanity``, ``diagnosis_true`` or
    ``diagnosis_pred``. None when the analysis has none of that kind for ``model``."""
    base = analysis_dir(ws, analysis_id)
    paths = {
        "attention": base / "attention" / f"{_safe(model)}.npy",
        "sanity": base / "sanity" / f"{_safe(model)}.npy",
        "diagnosis_true": base / "diagnosis" / f"{_safe(model)}_true.npy",
        "diagnosis_pred": base / "diagnosis" / f"{_safe(model)}_pred.npy",
    }
    if kind not in paths:
        raise KdcamError(f"unknown map kind {kind!r}; choose one of: {', '.join(paths)}")
    path = paths[kind]
    return np.load(path, mmap_mode="r") if path.is_file() else None


def load_per_image(ws: Workspace | str | Path, analysis_id: str) -> dict[str, np.ndarray]:
    """Every array of ``per_image.npz``, loaded (they are small: a few floats per image and model)."""
    path = analysis_dir(ws, analysis_id) / "per_image.npz"
    if not path.is_file():
        raise KdcamError(f"missing analysis file {path}")
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _safe(model: str) -> str:
    """Model names become file names; refuse anything that could escape the directory."""
    return check_id("model name", model)
