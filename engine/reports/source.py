"""The analysis a report is made from, opened once through the contract's validating readers.

Everything a report shows comes from ``analyses/ID/`` as documented in
docs/RESULTS_SCHEMA.md, read with ``engine.api.analyses.AnalysisFiles``: a typed
``AnalysisResults`` and the checked per-image arrays. This class only adds what a report
needs beyond browsing (the header facts, the raw results.json, the training curves), so
the CSV, figure and HTML layers never touch the file layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import __version__
from engine.api.analyses import RESULTS_FILE, AnalysisFiles
from engine.api.results import DatasetInfo, ModelEntry, PairEntry
from engine.api.runs import EpochRecord
from engine.api.workspace import Workspace
from engine.errors import KdcamError


class AnalysisSource(AnalysisFiles):
    """One finished analysis: its typed results.json, its per-image arrays and lazily opened maps."""

    @classmethod
    def open(cls, ws: Workspace | str | Path, analysis_id: str) -> AnalysisSource:
        """Open ``analyses/<analysis_id>``; an unknown id is refused with the ids that exist."""
        files = AnalysisFiles.open(ws, analysis_id)
        return cls(files.workspace, files.id, files.path, files.results, files.per_image)

    # -- what was computed ------------------------------------------------------------
    @property
    def spec(self) -> dict[str, object]:
        """The AnalyzeSpec as recorded in results.json (free-form: older and newer specs differ)."""
        return self.results.spec

    @property
    def dataset(self) -> DatasetInfo:
        return self.results.dataset

    @property
    def models(self) -> tuple[ModelEntry, ...]:
        """Model entries of results.json, teacher first."""
        return self.results.models

    @property
    def teacher(self) -> str:
        return self.results.teacher.name

    @property
    def pairs(self) -> tuple[PairEntry, ...]:
        return self.results.pairs

    def model_entry(self, name: str) -> ModelEntry:
        return self.results.model(name)

    def facts(self) -> list[tuple[str, str]]:
        """The header of every report: exactly what was computed, and by which tool."""
        results = self.results
        cam = results.cam
        layers = cam.layers
        distinct_layers = sorted(set(layers.values()))
        layer = distinct_layers[0] if len(distinct_layers) == 1 else ", ".join(f"{m}: {t}" for m, t in layers.items())

        def architecture(name: str) -> str:
            entry = self.model_entry(name)
            return f"{entry.arch} ×{entry.width}"

        students = ", ".join(f"{p.student} ({p.method or '?'}, {architecture(p.student)})" for p in self.pairs)
        dataset = self.dataset
        return [
            ("analysis", self.id),
            ("teacher", f"{self.teacher} ({architecture(self.teacher)})"),
            ("students", students),
            ("dataset", f"{dataset.spec} / {dataset.split}"),
            ("images (N)", f"{self.n} of {dataset.split_size} ({dataset.selection})"),
            ("CAM method", cam.method),
            ("target", cam.target),
            ("layer", layer or "default"),
            ("seed", str(self.spec.get("seed", ""))),
            ("analysed", f"{results.created} on {results.device}"),
            ("tool", f"kdcam {__version__}, results schema v{results.version}"),
        ]

    # -- arrays -----------------------------------------------------------------------
    def diagnosis_maps(self, model: str, which: str) -> np.ndarray | None:
        """CAMs of the true (``which="true"``) or predicted class of the listed worst errors, if stored."""
        return self.extra_maps(f"diagnosis_{which}", model)

    def model_row(self, model: str) -> int:
        return self.model_names.index(model)

    def student_row(self, student: str) -> int:
        return self.student_names.index(student)

    def results_bytes(self) -> bytes:
        """results.json exactly as the analysis wrote it (the export copies, never re-serialises)."""
        return (self.path / RESULTS_FILE).read_bytes()

    def run_curves(self) -> dict[str, list[EpochRecord]]:
        """Per-epoch records of the training runs the checkpoints came from, where the workspace has them."""
        from engine.api.checkpoints import read_meta
        from engine.api.runs import check_run_id, read_events

        curves: dict[str, list[EpochRecord]] = {}
        for name in self.model_names:
            try:
                run_id = read_meta(self.workspace.checkpoints, name).run_id
                if not run_id:
                    continue
                records = read_events(self.workspace.runs / check_run_id(run_id) / "events.jsonl")
            except KdcamError:
                continue  # imported, renamed or deleted since the analysis, or an unreadable run: no curve
            if records:
                curves[name] = records
        return curves
