"""The analysis a report is made from, opened once through the torch-free readers.

Everything a report shows comes from ``analyses/ID/`` as documented in
docs/RESULTS_SCHEMA.md (read with ``engine.analysis.results``); this class only gathers
the pieces and answers the questions every layer asks (which models, which class names,
which per-image arrays) so the CSV, figure and HTML layers never touch the file layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.analysis import results as reader
from engine.errors import KdcamError
from engine.names import is_valid_id
from engine.workspace import Workspace

# Per-image teacher-vs-student arrays of per_image.npz, in the order they appear in tables.
PAIR_METRICS = ("pearson", "l2_similarity", "iou", "kl", "spearman", "peak_distance", "output_kl")
# The four metrics that have interpretation bands (DESIGN §6), in leaderboard order.
BANDED_METRICS = ("pearson", "l2_similarity", "iou", "kl")


@dataclass
class AnalysisSource:
    """One finished analysis: its results.json, its per-image arrays and lazily opened maps."""

    workspace: Workspace
    analysis_id: str
    path: Path
    results: dict[str, Any]
    per_image: dict[str, np.ndarray]
    _maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, workspace: Workspace, analysis_id: str) -> "AnalysisSource":
        """Open ``analyses/<analysis_id>``; an unknown id is refused with the ids that exist."""
        path = reader.analysis_dir(workspace, analysis_id)
        if not (path / reader.RESULTS_FILE).is_file():
            known = ", ".join(info.id for info in reader.list_analyses(workspace)) or "none"
            raise KdcamError(f"no analysis {analysis_id!r} in {workspace.analyses} (known: {known})")
        results = reader.load_results(workspace, analysis_id)
        per_image = reader.load_per_image(workspace, analysis_id)
        source = cls(workspace, analysis_id, path, results, per_image)
        source._check_consistent()
        return source

    def _check_consistent(self) -> None:
        n = int(self.results["dataset"]["n"])
        if len(self.per_image["labels"]) != n:
            raise KdcamError(
                f"{self.path / 'per_image.npz'} holds {len(self.per_image['labels'])} images "
                f"but results.json says {n}; the analysis is damaged — re-run it"
            )

    # -- what was computed ------------------------------------------------------------
    @property
    def spec(self) -> dict[str, Any]:
        return self.results.get("spec", {})

    @property
    def dataset(self) -> dict[str, Any]:
        return self.results["dataset"]

    @property
    def class_names(self) -> list[str]:
        return list(self.dataset["class_names"])

    @property
    def n(self) -> int:
        return int(self.dataset["n"])

    @property
    def models(self) -> list[dict[str, Any]]:
        """Model entries of results.json, teacher first."""
        return list(self.results["models"])

    @property
    def model_names(self) -> list[str]:
        return [str(name) for name in self.per_image["models"]]

    @property
    def teacher(self) -> str:
        return next(m["name"] for m in self.models if m["role"] == "teacher")

    @property
    def pairs(self) -> list[dict[str, Any]]:
        return list(self.results["pairs"])

    @property
    def student_names(self) -> list[str]:
        return [str(name) for name in self.per_image["students"]]

    def model_entry(self, name: str) -> dict[str, Any]:
        return next(m for m in self.models if m["name"] == name)

    def class_name(self, k: int) -> str:
        names = self.class_names
        return names[k] if 0 <= k < len(names) else str(k)

    def facts(self) -> list[tuple[str, str]]:
        """The header of every report: exactly what was computed, and by which tool."""
        cam = self.results.get("cam", {})
        layers = cam.get("layers", {})
        distinct_layers = sorted(set(layers.values()))
        layer = distinct_layers[0] if len(distinct_layers) == 1 else ", ".join(f"{m}: {l}" for m, l in layers.items())
        def architecture(name: str) -> str:
            entry = self.model_entry(name)
            return f"{entry.get('arch')} ×{entry.get('width')}"

        students = ", ".join(f"{p['student']} ({p.get('method') or '?'}, {architecture(p['student'])})"
                             for p in self.pairs)
        return [
            ("analysis", self.analysis_id),
            ("teacher", f"{self.teacher} ({architecture(self.teacher)})"),
            ("students", students),
            ("dataset", f"{self.dataset['spec']} / {self.dataset['split']}"),
            ("images (N)", f"{self.n} of {self.dataset.get('split_size', self.n)} ({self.dataset.get('selection', '')})"),
            ("CAM method", str(cam.get("method", self.spec.get("method", "")))),
            ("target", str(cam.get("target", self.spec.get("target", "")))),
            ("layer", layer or "default"),
            ("seed", str(self.spec.get("seed", ""))),
            ("analysed", f"{self.results.get('created', '')} on {self.results.get('device', '')}"),
            ("tool", f"kdcam {__version__}, results schema v{self.results.get('version')}"),
        ]

    # -- arrays -----------------------------------------------------------------------
    @cached_property
    def images(self) -> np.ndarray:
        return reader.load_images(self.workspace, self.analysis_id)

    def maps(self, model: str) -> np.ndarray:
        if model not in self._maps:
            self._maps[model] = reader.load_maps(self.workspace, self.analysis_id, model)
        return self._maps[model]

    def diagnosis_maps(self, model: str, which: str) -> np.ndarray | None:
        """CAMs of the true (``which="true"``) or predicted class of the listed worst errors, if stored."""
        return reader.load_extra_maps(self.workspace, self.analysis_id, f"diagnosis_{which}", model)

    def model_row(self, model: str) -> int:
        return self.model_names.index(model)

    def student_row(self, student: str) -> int:
        return self.student_names.index(student)

    def results_bytes(self) -> bytes:
        """results.json exactly as the analysis wrote it (the export copies, never re-serialises)."""
        return (self.path / reader.RESULTS_FILE).read_bytes()

    def run_curves(self) -> dict[str, list[dict[str, Any]]]:
        """Per-epoch records of the training runs the checkpoints came from, where the workspace has them."""
        from engine.checkpoints.meta import read_meta
        from engine.train.runs import read_events

        curves: dict[str, list[dict[str, Any]]] = {}
        for name in self.model_names:
            try:
                run_id = read_meta(self.workspace.checkpoints, name).run_id
            except KdcamError:
                continue  # imported, renamed or deleted since the analysis: no run to show
            if run_id and is_valid_id("run id", run_id):
                records = [r for r in read_events(self.workspace.runs / run_id / "events.jsonl") if "epoch" in r]
                if records:
                    curves[name] = records
        return curves
