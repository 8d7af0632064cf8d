"""``kdcam data preview``: class counts for people and scripts, and a contact sheet PNG."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from PIL import Image

from engine.cli import data as data_cli
from engine.errors import KdcamError


def main(argv: list[str]) -> int:
    """``kdcam`` with only the data command registered, so other commands cannot break these tests."""
    parser = argparse.ArgumentParser(prog="kdcam")
    parser.add_argument("--workspace", "-w", default=".")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_preview_json_counts_and_contact_sheet(tmp_path, capsys):
    code = main(["-w", str(tmp_path), "data", "preview", "shapes?classes=5&test=40", "--split", "test",
                 "--json", "--out", "sheet.png"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 40 and summary["classes"] == 5 and summary["has_masks"] is True
    assert summary["class_counts"] == {"circle/solid": 8, "circle/striped-h": 8, "circle/striped-d": 8,
                                       "square/solid": 8, "square/striped-h": 8}
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.height == 5 * 64  # one row per class
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic write left no temp files


def test_preview_rich_table_names_every_class(tmp_path, capsys):
    assert main(["-w", str(tmp_path), "data", "preview", "shapes?classes=3&train=30"]) == 0
    out = capsys.readouterr().out
    assert "circle/solid" in out and "circle/striped-h" in out and "circle/striped-d" in out
    assert (tmp_path / "exports").is_dir() and len(list((tmp_path / "exports").glob("preview-*.png"))) == 1


def test_missing_dataset_files_are_a_clear_error(tmp_path):
    with pytest.raises(KdcamError) as info:
        main(["-w", str(tmp_path), "data", "preview", "mnist"])
    assert str(tmp_path / "data" / "MNIST" / "raw") in str(info.value) and "--download" in str(info.value)
    assert not (tmp_path / "exports").exists()  # nothing written for a dataset that did not load


def test_the_data_command_does_not_import_torch():
    code = "import sys, engine.cli.data; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
