"""The torch-free readers: listing skips half-written analyses, loading refuses what it cannot read."""

import json
import subprocess
import sys

import numpy as np
import pytest

from engine.analysis import results
from engine.errors import KdcamError


def _write(root, analysis_id, created="2026-01-01T00:00:00Z", version=results.SCHEMA_VERSION):
    folder = root / "analyses" / analysis_id
    (folder / "maps").mkdir(parents=True)
    doc = {"schema": results.SCHEMA, "version": version, "id": analysis_id, "created": created,
           "spec": {"teacher": "t", "students": ["a", "b"], "method": "gradcam", "target": "label"},
           "dataset": {"spec": "shapes", "n": 3}, "pairs": [{"student": "a", "band": "Good"}]}
    (folder / "results.json").write_text(json.dumps(doc))
    np.save(folder / "maps" / "t.npy", np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4))
    np.save(folder / "images.npy", np.zeros((3, 4, 4, 3), np.uint8))
    np.savez(folder / "per_image.npz", labels=np.array([0, 1, 2]), models=np.array(["t", "a"]))
    return folder


def test_lists_complete_analyses_newest_first(tmp_path):
    _write(tmp_path, "old", created="2026-01-01T00:00:00Z")
    _write(tmp_path, "new", created="2026-02-01T00:00:00Z")
    (tmp_path / "analyses" / ".new2.abc.tmp").mkdir()  # being written
    (tmp_path / "analyses" / "broken").mkdir()  # no results.json
    infos = results.list_analyses(tmp_path)
    assert [info.id for info in infos] == ["new", "old"]
    assert infos[0].students == ("a", "b") and infos[0].bands == {"a": "Good"} and infos[0].n == 3


def test_loads_arrays_memory_mapped(tmp_path):
    _write(tmp_path, "x")
    maps = results.load_maps(tmp_path, "x", "t")
    assert isinstance(maps, np.memmap) and maps.shape == (3, 4, 4) and int(maps[2, 3, 3]) == 47
    assert results.load_images(tmp_path, "x").shape == (3, 4, 4, 3)
    assert results.load_per_image(tmp_path, "x")["models"].tolist() == ["t", "a"]
    assert results.load_masks(tmp_path, "x") is None
    assert results.load_extra_maps(tmp_path, "x", "sanity", "t") is None


def test_refuses_missing_newer_or_escaping(tmp_path):
    _write(tmp_path, "future", version=results.SCHEMA_VERSION + 1)
    with pytest.raises(KdcamError, match="upgrade kdcam"):
        results.load_results(tmp_path, "future")
    with pytest.raises(KdcamError, match="no readable analysis"):
        results.load_results(tmp_path, "nothing")
    with pytest.raises(KdcamError, match="invalid analysis id"):
        results.load_results(tmp_path, "../x")
    with pytest.raises(KdcamError, match="missing analysis file"):
        results.load_maps(tmp_path, "future", "nobody")
    with pytest.raises(KdcamError, match="invalid model name"):
        results.load_maps(tmp_path, "future", "../t")


def test_readers_do_not_import_torch():
    code = ("import sys, engine.analysis.results, engine.analysis.bands, engine.analysis.bootstrap, "
            "engine.analysis.diagnosis, engine.analysis.superclasses; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
