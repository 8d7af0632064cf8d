"""End to end through the real pipeline: tiny models saved in the checkpoint store, a real
analysis of them on a small shapes split, then the export — whose CSV and HTML numbers must be
the ones the real results.json and per_image.npz hold, with training curves for the model that
came from a run in the workspace."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.api.specs import AnalyzeSpec, ExportSpec
from engine.api.workspace import Workspace
from engine.jobs import JobContext, run_inline
from engine.reports.export import run_export_job
from tests.test_reports import LeaderboardReader, same

pytestmark = pytest.mark.slow

DATASET = "shapes?classes=4&train=32&test=24"
STUDENTS = ("kd-s", "at-s")
RUN_ID = "20260101-000000-teacher"


def quiet() -> JobContext:
    return JobContext("e2e", lambda event: None, threading.Event())


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str]:
    import torch

    from engine.api.checkpoints import CheckpointMeta
    from engine.checkpoints.store import CheckpointStore
    from engine.models import build_model

    ws = Workspace.open(tmp_path_factory.mktemp("ws")).ensure()
    store = CheckpointStore(ws.checkpoints)
    for seed, (name, role, method) in enumerate((("teacher", "teacher", None), ("kd-s", "student", "kd"),
                                                 ("at-s", "student", "at"))):
        torch.manual_seed(seed)
        store.save(name, build_model("vgg8", 4, width=0.25), CheckpointMeta(
            name=name, arch="vgg8", num_classes=4, width=0.25, dataset=DATASET, role=role, method=method,
            teacher=None if role == "teacher" else "teacher", run_id=RUN_ID if role == "teacher" else None))
    run = ws.runs / RUN_ID
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "teacher"}))
    (run / "events.jsonl").write_text("".join(
        json.dumps({"epoch": e, "epochs": 3, "losses": {"ce": 2.0 / e}, "train_acc": 0.2 * e, "test_acc": 0.2 * e,
                    "lr": 0.05, "images_per_s": 100.0, "elapsed": float(e)}) + "\n" for e in (1, 2, 3)))
    spec = AnalyzeSpec(workspace=str(ws.root), teacher="teacher", students=STUDENTS, dataset=DATASET, n=24,
                       name="real", batch_size=12, check_images=4, deletion_steps=4, resamples=200, device="cpu")
    run_inline(spec, quiet())
    return ws, "real"


@pytest.fixture(scope="module")
def exported(analysed: tuple[Workspace, str]) -> tuple[Workspace, Path]:
    ws, analysis = analysed
    result = run_export_job(ExportSpec(workspace=str(ws.root), analysis=analysis, examples=3), quiet())
    return ws, Path(result.path)


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_real_analysis_exports_its_own_numbers(exported: tuple[Workspace, Path]) -> None:
    ws, out = exported
    results = json.loads((ws.analyses / "real" / "results.json").read_text())
    assert (out / "results.json").read_bytes() == (ws.analyses / "real" / "results.json").read_bytes()
    leaderboard = rows(out / "leaderboard.csv")
    assert [r["student"] for r in leaderboard] == list(STUDENTS)
    for row, pair in zip(leaderboard, results["pairs"], strict=True):
        assert row["band"] == pair["band"]
        for metric in ("pearson", "l2_similarity", "iou", "kl", "spearman", "peak_distance"):
            assert same(row[metric], pair["metrics"][metric]["mean"]), metric
            assert same(row[f"{metric}_ci_high"], pair["metrics"][metric]["ci_high"]), metric

    data = np.load(ws.analyses / "real" / "per_image.npz")
    per_image = rows(out / "per_image.csv")
    assert len(per_image) == 24
    for i, row in enumerate(per_image):
        assert int(row["label"]) == data["labels"][i]
        for m, model in enumerate(data["models"]):
            assert int(row[f"{model}_pred"]) == data["preds"][m, i]
            assert np.float32(row[f"{model}_confidence"]) == data["confidences"][m, i]
        for s, student in enumerate(data["students"]):
            value = data["pearson"][s, i]
            cell = row[f"{student}_pearson"]
            assert (cell == "") if np.isnan(value) else np.float32(cell) == value

    reader = LeaderboardReader()
    reader.feed((out / "report.html").read_text())
    for pair in results["pairs"]:
        expected, shown = pair["metrics"]["pearson"]["mean"], reader.rows[pair["student"]][2]
        assert (shown == "") if expected is None else float(shown) == expected


def test_the_checks_on_the_maps_are_reported(exported: tuple[Workspace, Path]) -> None:
    ws, out = exported
    results = json.loads((ws.analyses / "real" / "results.json").read_text())
    page = (out / "report.html").read_text()
    assert 'id="sanity"' in page and 'id="faithfulness"' in page
    deletion = results["faithfulness"]["models"]["teacher"]["deletion_auc"]["mean"]
    assert f'data-value="{deletion!r}"' in page


def test_training_curves_come_from_the_workspace_runs(exported: tuple[Workspace, Path]) -> None:
    _, out = exported
    assert (out / "figures" / "training_curves.png").is_file()
    assert "Training curves" in (out / "report.html").read_text()
