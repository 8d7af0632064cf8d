"""``kdcam analyze`` from a shell: arguments become an AnalyzeSpec, JSON output ends with the result."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

from engine.api.checkpoints import CheckpointMeta
from engine.checkpoints.store import CheckpointStore
from engine.cli import analyze
from engine.models import build_model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdcam")
    parser.add_argument("--workspace", "-w", default=".")
    analyze.register(parser.add_subparsers(dest="command"))
    return parser


def test_analyze_json_run_prints_progress_then_the_result(tmp_path, capsys):
    store = CheckpointStore(tmp_path / "checkpoints")
    for name in ("t", "s"):
        store.save(name, build_model("vgg8", 4, width=0.125), CheckpointMeta(name=name, arch="vgg8", num_classes=4,
                                                                              width=0.125))
    args = _parser().parse_args(["-w", str(tmp_path), "analyze", "--teacher", "t", "--students", "s",
                                 "--dataset", "shapes?classes=4&train=8&test=12", "--n", "10", "--batch", "4",
                                 "--check-images", "3", "--device", "cpu", "--name", "cli", "--json"])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    progress = [json.loads(line) for line in lines if line.startswith('{"event": "progress"')]
    assert [p["done"] for p in progress if p["phase"] == "maps"] == [1, 2, 3]
    result = json.loads("\n".join(lines[lines.index("{"):]))
    assert result["event"] == "result" and result["id"] == "cli" and set(result["bands"]) == {"s"}
    saved = json.loads((tmp_path / "analyses" / "cli" / "results.json").read_text())
    assert saved["dataset"]["n"] == 10 and saved["dataset"]["selection"] == "random"
    assert saved["spec"]["check_images"] == 3


def test_importing_the_command_does_not_import_torch():
    code = "import sys, engine.cli.analyze; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_a_single_model_gets_a_diagnosis_without_pairs(tmp_path, capsys):
    store = CheckpointStore(tmp_path / "checkpoints")
    store.save("solo", build_model("vgg8", 4, width=0.125), CheckpointMeta(name="solo", arch="vgg8", num_classes=4,
                                                                            width=0.125))
    args = _parser().parse_args(["-w", str(tmp_path), "analyze", "--teacher", "solo",
                                 "--dataset", "shapes?classes=4&train=8&test=12", "--check-images", "2",
                                 "--device", "cpu", "--name", "solo"])
    assert args.handler(args) == 0
    assert "analysis written to" in capsys.readouterr().out
    saved = json.loads((tmp_path / "analyses" / "solo" / "results.json").read_text())
    assert saved["pairs"] == [] and list(saved["diagnosis"]) == ["solo"]
    assert np.array(saved["diagnosis"]["solo"]["confusion"]).sum() == 12
