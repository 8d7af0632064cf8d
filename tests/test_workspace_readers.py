"""Every workspace file read through the contract: each hand-edited, truncated or foreign file
is one clear ``KdcamError`` naming the file and the field, never a crash; the CLI prints that
message and exits non-zero; reading never modifies the workspace."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.api.checkpoints import CheckpointMeta, read_meta, scan_checkpoints
from engine.api.runs import read_events, read_run, scan_runs
from engine.api.validate import Fields
from engine.api.workspace import Workspace
from engine.errors import KdcamError
from tests.test_reports_fixture import write_synthetic_analysis

ROOT = Path(__file__).resolve().parents[1]
GOOD_META = {"name": "m", "arch": "vgg8", "num_classes": 4, "width": 0.125, "in_channels": 3, "input_size": 32,
             "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "role": "student", "method": "kd",
             "accuracy": 0.5, "params": 1000, "created": "2026-01-01T00:00:00+00:00"}

META_CORRUPTIONS: list[tuple[str, Any, str]] = [
    ("accuracy", "high", "accuracy"), ("created", 5, "created"), ("params", "many", "params"),
    ("width", "abc", "width"), ("width", 500, "width"), ("num_classes", 2e9, "num_classes"),
    ("num_classes", 2_000_000_000, "num_classes"), ("mean", ["x"], "mean"), ("in_channels", "three", "in_channels"),
    ("input_size", 0, "input_size"), ("std", [0, 0, 0], "std"), ("role", "boss", "role"),
    ("accuracy", 1.5, "accuracy"), ("class_names", ["a"], "class_names"), ("arch", None, "arch"),
]


def _store_with(tmp_path: Path, meta: Any, name: str = "m") -> Path:
    store = tmp_path / "checkpoints"
    store.mkdir(parents=True, exist_ok=True)
    (store / f"{name}.json").write_text(json.dumps(meta))
    (store / f"{name}.safetensors").write_bytes(b"weights")
    return store


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_good_metadata_round_trips() -> None:
    meta = CheckpointMeta.from_dict(GOOD_META)
    assert CheckpointMeta.from_dict(meta.to_dict()) == meta and meta.mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(("key", "value", "field"), META_CORRUPTIONS)
def test_each_bad_metadata_field_is_named(tmp_path: Path, key: str, value: Any, field: str) -> None:
    store = _store_with(tmp_path, {**GOOD_META, key: value})
    with pytest.raises(KdcamError, match=rf"m\.json.*{field}"):
        read_meta(store, "m")
    metas, broken = scan_checkpoints(store)
    assert metas == [] and [b.name for b in broken] == ["m"] and field in broken[0].reason


@pytest.mark.parametrize("content", ["[1]", "{", "", '"text"', "null", '{"name": "m"}'])
def test_metadata_that_is_not_an_object_or_incomplete(tmp_path: Path, content: str) -> None:
    store = tmp_path / "checkpoints"
    store.mkdir()
    (store / "m.json").write_text(content)
    (store / "m.safetensors").write_bytes(b"w")
    with pytest.raises(KdcamError, match=r"m\.json"):
        read_meta(store, "m")


def _run(tmp_path: Path, status: Any = None, events: str | None = None, config: Any = None) -> Path:
    run = tmp_path / "runs" / "20260101-000000-000-m"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config if config is not None else
                                                {"name": "m", "role": "student", "method": "kd", "spec": {}}))
    (run / "status.json").write_text(json.dumps(status if status is not None else {"state": "finished"}))
    (run / "events.jsonl").write_text(events if events is not None else json.dumps({"epoch": 1, "test_acc": 0.5})
                                      + "\n")
    return run


RUN_CORRUPTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("status is a list", {"status": [1]}, "status.json"),
    ("status state unknown", {"status": {"state": "dancing"}}, "state"),
    ("events line is a list", {"events": '{"epoch": 1}\n[1]\n{"epoch": 2}\n'}, "events.jsonl:2"),
    ("events epoch is text", {"events": '{"epoch": "one"}\n{"epoch": 2}\n'}, "epoch"),
    ("events losses not numbers", {"events": '{"epoch": 1, "losses": {"ce": "x"}}\n{"epoch": 2}\n'}, "ce"),
    ("config is a list", {"config": [1]}, "config.json"),
    ("config role unknown", {"config": {"name": "m", "role": "x", "spec": {}}}, "role"),
]


@pytest.mark.parametrize(("kind", "files", "pattern"), RUN_CORRUPTIONS, ids=[c[0] for c in RUN_CORRUPTIONS])
def test_each_bad_run_file_is_named(tmp_path: Path, kind: str, files: dict[str, Any], pattern: str) -> None:
    _run(tmp_path, **files)
    with pytest.raises(KdcamError, match=pattern):
        read_run(tmp_path, "20260101-000000-000-m")
    runs, broken = scan_runs(tmp_path)
    assert runs == [] and len(broken) == 1


def test_a_torn_last_event_line_is_a_crash_mid_write_not_an_error(tmp_path: Path) -> None:
    run = _run(tmp_path, events='{"epoch": 1, "test_acc": 0.5}\n{"epoch": 2, "te')
    assert [r.epoch for r in read_events(run / "events.jsonl")] == [1]


def test_fields_reject_bools_as_numbers_and_name_the_path() -> None:
    f = Fields({"a": {"b": True}}, "file.json")
    with pytest.raises(KdcamError, match=r"file\.json\.a: field 'b': expected an integer, found true"):
        f.obj("a").integer("b")


def _kdcam(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "--workspace", str(tmp_path), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


CLI_CASES: list[tuple[str, Callable[[Path], None], tuple[str, ...], str]] = [
    ("list with bad metadata", lambda p: _store_with(p, {**GOOD_META, "accuracy": "high"}) and None,
     ("checkpoints", "list"), "m.json"),
    ("inspect bad metadata", lambda p: _store_with(p, {**GOOD_META, "width": "abc"}) and None,
     ("checkpoints", "inspect", "m"), "m.json"),
    ("export bad results", lambda p: (write_synthetic_analysis(Workspace.open(p).ensure(), "a", n=8)
                                      / "results.json").write_text('{"schema": "kdcam.analysis", "version": "1"}'),
     ("export", "a"), "results.json"),
    ("export truncated per_image", lambda p: (write_synthetic_analysis(Workspace.open(p).ensure(), "a", n=8)
                                              / "per_image.npz").write_bytes(b"PK\x03\x04"),
     ("export", "a"), "per_image.npz"),
]


@pytest.mark.parametrize(("kind", "corrupt", "args", "named"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_prints_one_clear_error_and_exits_non_zero(tmp_path: Path, kind: str, corrupt: Callable[[Path], None],
                                                       args: tuple[str, ...], named: str) -> None:
    corrupt(tmp_path)
    before = _hashes(tmp_path)
    result = _kdcam(tmp_path, *args)
    assert result.returncode == 1, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert _hashes(tmp_path) == before


MANIFEST_CORRUPTIONS: list[tuple[str, Any, str]] = [
    ("not an object", [1], "expected a JSON object"),
    ("wrong schema", {"schema": "other", "version": 1, "analysis": "a", "files": []}, "schema"),
    ("newer version", {"schema": "kdcam-export", "version": 9, "analysis": "a", "files": []}, "upgrade"),
    ("path escapes", {"schema": "kdcam-export", "version": 1, "analysis": "a",
                      "files": [{"path": "../x", "bytes": 1, "sha256": "0" * 64}]}, "inside the export"),
    ("bad digest", {"schema": "kdcam-export", "version": 1, "analysis": "a",
                    "files": [{"path": "x", "bytes": 1, "sha256": "zz"}]}, "sha256"),
    ("size is text", {"schema": "kdcam-export", "version": 1, "analysis": "a",
                      "files": [{"path": "x", "bytes": "1", "sha256": "0" * 64}]}, "bytes"),
]


@pytest.mark.parametrize(("kind", "document", "pattern"), MANIFEST_CORRUPTIONS, ids=[c[0] for c in MANIFEST_CORRUPTIONS])
def test_each_bad_export_manifest_is_named_and_the_folder_is_not_an_export(
        tmp_path: Path, kind: str, document: Any, pattern: str) -> None:
    from engine.api.exports import MANIFEST, is_export, read_manifest

    (tmp_path / MANIFEST).write_text(json.dumps(document))
    with pytest.raises(KdcamError, match=pattern):
        read_manifest(tmp_path)
    assert not is_export(tmp_path)


def test_a_valid_export_in_a_folder_whose_name_is_not_a_name_is_not_listed(tmp_path: Path) -> None:
    # the TUI lists exports by folder name: a stranger's '[ @click=app.quit]x' must not be one
    from engine.api.exports import MANIFEST, list_exports, manifest_document

    ws = Workspace.open(tmp_path / "ws").ensure()
    for name in ("report", "[ @click=app.quit]x"):
        folder = ws.exports / name
        folder.mkdir()
        (folder / "a.txt").write_bytes(b"a")
        (folder / MANIFEST).write_text(json.dumps(manifest_document("a1", {"a.txt": b"a"})))
    assert list_exports(ws) == ["report"]
