"""The torch-free analysis readers: listing names broken analyses instead of hiding or crashing on
them, loading validates every file against results.json, and every corruption gives one
``KdcamError`` naming the file (table-driven over the ways real files break)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.api import analyses
from engine.api.results import SCHEMA_VERSION
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from tests.test_reports_fixture import write_synthetic_analysis


def _analysis(tmp_path: Path, analysis_id: str = "x") -> Path:
    return write_synthetic_analysis(Workspace.open(tmp_path).ensure(), analysis_id, n=12)


def test_lists_complete_analyses_newest_first_and_names_broken_ones(tmp_path: Path) -> None:
    for analysis_id, created in (("old", "2026-01-01T00:00:00Z"), ("new", "2026-02-01T00:00:00Z")):
        path = _analysis(tmp_path, analysis_id)
        doc = json.loads((path / "results.json").read_text())
        (path / "results.json").write_text(json.dumps({**doc, "created": created}))
    (tmp_path / "analyses" / ".new2.abc.tmp").mkdir()  # being written
    (tmp_path / "analyses" / "empty").mkdir()  # no results.json
    broken = _analysis(tmp_path, "broken")
    (broken / "results.json").write_text('{"schema": "kdcam.analysis", "version": "1"}')
    # a readable results.json in a folder whose name is not an id (a stranger's markup) is not an analysis
    shutil.copytree(tmp_path / "analyses" / "old", tmp_path / "analyses" / "[ @click=app.quit]old")
    infos, unreadable = analyses.scan_analyses(tmp_path)
    assert [info.id for info in infos] == ["new", "old"]
    assert infos[0].students == ("kd-student", "at-student", "si-student") and infos[0].n == 12
    assert [(u.id, "version" in u.reason) for u in unreadable] == [("[ @click=app.quit]old", False), ("broken", True)]
    assert "invalid analysis id" in unreadable[0].reason


def test_opens_arrays_memory_mapped_after_checking_them(tmp_path: Path) -> None:
    _analysis(tmp_path)
    files = analyses.AnalysisFiles.open(tmp_path, "x")
    maps = files.maps("teacher")
    assert isinstance(maps, np.memmap) and maps.shape == (12, 32, 32)
    assert files.images.shape == (12, 32, 32, 3) and files.masks() is not None
    assert files.per_image["models"].tolist() == ["teacher", "kd-student", "at-student", "si-student"]
    assert files.extra_maps("sanity", "teacher") is None


def test_refuses_newer_missing_or_escaping(tmp_path: Path) -> None:
    path = _analysis(tmp_path, "future")
    doc = json.loads((path / "results.json").read_text())
    (path / "results.json").write_text(json.dumps({**doc, "version": SCHEMA_VERSION + 1}))
    with pytest.raises(KdcamError, match="upgrade kdcam"):
        analyses.load_results(tmp_path, "future")
    with pytest.raises(KdcamError, match="no analysis 'nothing'"):
        analyses.load_results(tmp_path, "nothing")
    with pytest.raises(KdcamError, match="invalid analysis id"):
        analyses.load_results(tmp_path, "../x")


def _json_edit(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        doc = json.loads((path / "results.json").read_text())
        edit(doc)
        (path / "results.json").write_text(json.dumps(doc))
    return apply


def _truncate(name: str, keep: float = 0.5) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[: int(len(data) * keep)])
    return apply


def _replace_npy(name: str, array: np.ndarray) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        np.save(path / name, array, allow_pickle=True)
    return apply


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "version is text": (_json_edit(lambda d: d.update(version="1")), "version"),
    "n is text": (_json_edit(lambda d: d["dataset"].update(n="many")), "dataset.*'n'"),
    "pair is not an object": (_json_edit(lambda d: d["pairs"].append(3)), r"pairs\[3\]"),
    "models not a list": (_json_edit(lambda d: d.update(models={"a": 1})), "models"),
    "band unknown": (_json_edit(lambda d: d["pairs"][0].update(band="Superb")), "band"),
    "mean is infinite": (_json_edit(lambda d: d["pairs"][0]["metrics"]["pearson"].update(mean=1e999)), "mean"),
    "two teachers": (_json_edit(lambda d: d["models"][1].update(role="teacher")), "teacher"),
    "class names short": (_json_edit(lambda d: d["dataset"]["class_names"].pop()), "class_names"),
    # text every front-end shows: markup (Rich/Textual) or escapes in a forged file would break or fake the screen
    "model name is markup": (_json_edit(lambda d: d["models"][0].update(name="[/]x")), r"models\[0\].*'name'"),
    "student with escapes": (_json_edit(lambda d: d["pairs"][0].update(student="s\x1b[2J")), "'student'"),
    "method label is markup": (_json_edit(lambda d: d["pairs"][0].update(method="kd[red]")), "'method'"),
    "cam method unknown": (_json_edit(lambda d: d["cam"].update(method="[/bold]")), "cam.*'method'"),
    "cam target not a target": (_json_edit(lambda d: d["cam"].update(target="[/]t")), "cam.*'target'"),
    "layer is markup": (_json_edit(lambda d: d["cam"]["layers"].update({next(iter(d["cam"]["layers"])): "[/]"})),
                        "layers"),
    "results not JSON": (lambda p: (p / "results.json").write_text("{"), "not valid JSON"),
    "results a list": (lambda p: (p / "results.json").write_text("[1]"), "expected a JSON object"),
    "results truncated": (_truncate("results.json"), "results.json"),
    "per_image truncated": (_truncate("per_image.npz"), "per_image.npz"),
    "per_image not a zip": (lambda p: (p / "per_image.npz").write_bytes(b"PK\x03\x04junk"), "per_image.npz"),
}
ARRAY_CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "images truncated": (_truncate("images.npy", 0.7), "truncated"),
    "images header only": (_truncate("images.npy", 0.001), "images.npy"),
    "images wrong shape": (_replace_npy("images.npy", np.zeros((3, 32, 32, 3), np.uint8)), "shape"),
    "images float": (_replace_npy("images.npy", np.zeros((12, 32, 32, 3), np.float32)), "expected uint8"),
    "images objects": (_replace_npy("images.npy", np.array([None] * 12, dtype=object)), "object"),
    "maps truncated": (lambda p: _truncate("teacher.npy")(p / "maps"), "truncated"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_each_corruption_of_results_or_per_image_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    corrupt, pattern = CORRUPTIONS[kind]
    path = _analysis(tmp_path)
    corrupt(path)
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with pytest.raises(KdcamError, match=pattern) as caught:
        analyses.AnalysisFiles.open(tmp_path, "x")
    assert str(path) in str(caught.value)
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before  # reading never writes


@pytest.mark.parametrize("kind", sorted(ARRAY_CORRUPTIONS))
def test_each_corruption_of_an_array_file_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    corrupt, pattern = ARRAY_CORRUPTIONS[kind]
    path = _analysis(tmp_path)
    corrupt(path)
    files = analyses.AnalysisFiles.open(tmp_path, "x")
    with pytest.raises(KdcamError, match=pattern) as caught:
        _ = files.images
        files.maps("teacher")
    assert str(path) in str(caught.value)


def test_readers_do_not_import_torch() -> None:
    code = ("import sys, engine.api.analyses, engine.api.runs, engine.api.checkpoints, engine.analysis.bootstrap, "
            "engine.analysis.diagnosis, engine.analysis.superclasses; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
