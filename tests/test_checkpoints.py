"""The native checkpoint store and ``kdcam checkpoints``: what is saved loads back identically,
listing tolerates half-written files, rename/delete keep both files together, and the CLI's
JSON is what scripts can rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.checkpoints import CheckpointMeta, CheckpointStore, list_checkpoints, read_meta
from engine.cli.main import main
from engine.errors import KdcamError
from engine.models import build_model


@pytest.fixture()
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "checkpoints")


def save_small(store: CheckpointStore, name: str, arch: str = "vgg8", **fields) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(arch, 10, 0.25).eval()
    store.save(name, model, CheckpointMeta(name=name, arch=arch, num_classes=10, width=0.25, **fields))
    return model


def test_save_then_load_gives_the_same_model_and_metadata(store: CheckpointStore) -> None:
    model = save_small(store, "teacher", role="teacher", dataset="shapes", accuracy=0.81, recipe="quick")
    loaded, meta = store.load("teacher")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert not loaded.training
    assert (meta.arch, meta.width, meta.role, meta.accuracy, meta.dataset) == ("vgg8", 0.25, "teacher", 0.81, "shapes")
    assert meta.params == sum(p.numel() for p in model.parameters())
    on_disk = json.loads((store.directory / "teacher.json").read_text())
    assert on_disk["name"] == "teacher" and on_disk["mean"] == [0.5, 0.5, 0.5]
    # hidden: the writer lock and the (empty) journal folder
    assert sorted(p.name for p in store.directory.iterdir() if not p.name.startswith(".")) == ["teacher.json", "teacher.safetensors"]
    assert list((store.directory / ".journal").iterdir()) == []


class _LikeTorchCompile(torch.nn.Module):
    """What ``torch.compile`` returns: a wrapper whose tensor names gain ``_orig_mod.``
    (a stand-in, because importing dynamo costs seconds of test time)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self._orig_mod = inner


def test_a_compiled_model_is_stored_under_its_plain_names(store: CheckpointStore) -> None:
    model = build_model("vgg8", 10, 0.25).eval()
    wrapped = _LikeTorchCompile(model)
    assert next(iter(wrapped.state_dict())).startswith("_orig_mod.")
    store.save("compiled", wrapped, CheckpointMeta(name="compiled", arch="vgg8", num_classes=10, width=0.25))
    loaded, _ = store.load("compiled")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_listing_skips_half_written_and_foreign_files(store: CheckpointStore) -> None:
    save_small(store, "b-complete")
    save_small(store, "a-complete")
    (store.directory / "weights-only.safetensors").write_bytes(b"partial")
    (store.directory / "json-only.json").write_text(json.dumps({"name": "json-only", "arch": "vgg8", "num_classes": 10}))
    (store.directory / "garbled.safetensors").write_bytes(b"x")
    (store.directory / "garbled.json").write_text("{not json")
    (store.directory / ".teacher.json.abc.tmp").write_text("{}")
    assert [m.name for m in list_checkpoints(store.directory)] == ["a-complete", "b-complete"]
    assert list_checkpoints(store.directory / "missing") == []


def test_metadata_from_a_newer_kdcam_still_reads(store: CheckpointStore) -> None:
    save_small(store, "m")
    path = store.directory / "m.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "field_from_the_future": 1}))
    assert read_meta(store.directory, "m").arch == "vgg8"


def test_rename_moves_both_files_and_never_overwrites(store: CheckpointStore) -> None:
    save_small(store, "teacher", role="teacher")
    save_small(store, "student", arch="resnet20", role="student", method="kd", teacher="teacher")
    store.rename("teacher", "vgg8-teacher")
    assert [m.name for m in store.list()] == ["student", "vgg8-teacher"]
    assert store.meta("student").teacher == "vgg8-teacher"
    model, meta = store.load("vgg8-teacher")
    assert meta.name == "vgg8-teacher"
    before = sorted(p.name for p in store.directory.iterdir())
    with pytest.raises(KdcamError, match="'student' already exists"):
        store.rename("vgg8-teacher", "student")
    with pytest.raises(KdcamError, match="no checkpoint named 'ghost'"):
        store.rename("ghost", "other")
    assert sorted(p.name for p in store.directory.iterdir()) == before


def test_delete_removes_both_files(store: CheckpointStore) -> None:
    save_small(store, "gone")
    save_small(store, "kept")
    store.delete("gone")
    assert sorted(p.name for p in store.directory.iterdir() if not p.name.startswith(".")) == ["kept.json", "kept.safetensors"]
    with pytest.raises(KdcamError, match="no checkpoint named 'gone'.*known: kept"):
        store.delete("gone")


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 121, "sp ace"])
def test_invalid_names_are_refused(store: CheckpointStore, name: str) -> None:
    with pytest.raises(KdcamError, match="invalid checkpoint name"):
        save_small(store, name)
    assert not store.directory.exists() or list(store.directory.iterdir()) == []


def test_damaged_weights_give_a_clear_error(store: CheckpointStore) -> None:
    save_small(store, "broken")
    (store.directory / "broken.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(KdcamError, match="broken.safetensors are unreadable"):
        store.load("broken")


def test_weights_that_do_not_match_the_metadata_are_named(store: CheckpointStore) -> None:
    save_small(store, "liar")
    path = store.directory / "liar.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "arch": "vgg11"}))
    with pytest.raises(KdcamError, match="tensors do not fit VGG: missing tensors: stage3.3.weight"):
        store.load("liar")


# ---- CLI ----------------------------------------------------------------------------------------

def kdcam(workspace: Path, *argv: str) -> int:
    return main(["--workspace", str(workspace), "checkpoints", *argv])


def test_cli_import_list_inspect_rename_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # a terminal wide enough for the whole table
    torch.manual_seed(0)
    original = build_model("resnet20", 20, 0.5)
    torch.save({"model": original.state_dict(), "epoch": 5, "accuracy": 64.0}, tmp_path / "rn20.pth")
    assert kdcam(tmp_path, "import", str(tmp_path / "rn20.pth"), "--dataset", "shapes", "--role", "teacher") == 0
    capsys.readouterr()

    assert kdcam(tmp_path, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["arch"], m["width"], m["num_classes"], m["role"], m["accuracy"]) for m in listed] == [
        ("rn20", "resnet20", 0.5, 20, "teacher", 0.64)
    ]

    assert kdcam(tmp_path, "inspect", "rn20", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["channels"], t["height"]) for t in report["taps"]] == [
        ("stem", 8, 32), ("layer1", 8, 32), ("layer2", 16, 16), ("layer3", 32, 8)
    ]
    assert report["default_cam_tap"] == "layer3"
    assert report["source_path"] == str((tmp_path / "rn20.pth").resolve())
    assert report["files"]["weights_bytes"] == (tmp_path / "checkpoints" / "rn20.safetensors").stat().st_size

    assert kdcam(tmp_path, "list") == 0
    table = capsys.readouterr().out
    assert "rn20" in table and "teacher" in table and "64.00%" in table

    assert kdcam(tmp_path, "rename", "rn20", "teacher-rn20") == 0
    assert kdcam(tmp_path, "delete", "teacher-rn20") == 1  # no tty, no --yes: refused
    assert "pass --yes" in capsys.readouterr().err
    assert kdcam(tmp_path, "delete", "teacher-rn20", "--yes") == 0
    capsys.readouterr()
    assert kdcam(tmp_path, "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_import_errors_are_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    assert kdcam(tmp_path, "import", str(tmp_path / "empty.pt")) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "the file is empty" in err
    assert kdcam(tmp_path, "inspect", "nothing") == 1
    assert "no checkpoint named 'nothing'" in capsys.readouterr().err


def test_cli_import_json_ends_with_the_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(build_model("vgg8", 10, 0.25).state_dict(), tmp_path / "v.pt")
    assert kdcam(tmp_path, "import", str(tmp_path / "v.pt"), "--name", "v8", "--mean", "0.5,0.4,0.3",
                 "--std", "0.2,0.2,0.2", "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line.get("event") for line in lines[:-1]} <= {"progress", "log"}
    assert (lines[-1]["name"], lines[-1]["mean"], lines[-1]["std"]) == ("v8", [0.5, 0.4, 0.3], [0.2, 0.2, 0.2])


def test_listing_from_the_cli_never_imports_torch(tmp_path: Path) -> None:
    """``kdcam checkpoints list`` reads JSON only, so it answers instantly even on a busy GPU box."""
    import subprocess
    import sys

    save_small(CheckpointStore(tmp_path / "checkpoints"), "one")
    code = (
        "import sys; from engine.cli.main import main; "
        f"rc = main(['--workspace', {str(tmp_path)!r}, 'checkpoints', 'list', '--json']); "
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH'); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"name": "one"' in done.stdout and done.stdout.strip().endswith("NOTORCH")
