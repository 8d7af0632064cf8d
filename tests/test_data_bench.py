"""bench/data.py keeps working: it runs on a tiny set and prints every pipeline with its ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # imports torchvision in a subprocess: seconds on an idle machine
def test_data_benchmark_runs_and_reports_ratios():
    result = subprocess.run(
        [sys.executable, "bench/data.py", "--images", "256", "--repeats", "1", "--threads", "1", "--workers", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("shapes v")] == ["v3", "v2", "v1"]  # every version
    assert any(line.startswith("DeviceLoader, train") for line in lines)
    baselines = [line for line in lines if line.startswith("torchvision transforms")]
    assert len(baselines) == 1 and all(line.rstrip().endswith("x") for line in baselines)
