"""Architecture rules a user relies on indirectly: the engine works without textual, and
the modules the TUI imports on its UI thread never pull in torch (first frame stays fast)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_FREE = [
    "engine",
    "engine.errors",
    "engine.events",
    "engine.jobs",
    "engine.runners",
    "engine.api",
    "engine.api.atomic",
    "engine.api.analyses",
    "engine.api.seedgroups",
    "engine.api.bands",
    "engine.api.catalogue",
    "engine.api.checkpoints",
    "engine.api.datasets",
    "engine.api.exports",
    "engine.api.liveness",
    "engine.api.model_code",
    "engine.api.sweep",
    "engine.api.trust",
    "engine.api.results",
    "engine.api.runs",
    "engine.api.specs",
    "engine.api.validate",
    "engine.api.workspace",
    "engine.api.names",
    "engine.lock",
    "engine.api.integrity",
    "engine.checkpoints.store",
    "engine.cli.main",
]


def test_engine_never_imports_textual() -> None:
    offenders = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "textual" or name.startswith(("textual.", "textual_")) for name in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], f"engine/ imports textual at {offenders}"


@pytest.mark.parametrize("module", TORCH_FREE)
def test_ui_thread_modules_do_not_import_torch(module: str) -> None:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "heavy = [m for m in ('torch', 'torchvision', 'textual') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing {module} pulled in {result.stdout.strip()}"


def test_cli_help_lists_every_command_without_torch() -> None:
    code = (
        "import sys, contextlib, io; from engine.cli.main import build_parser; "
        "p = build_parser(); "
        "buf = io.StringIO(); "
        "p.print_help(buf); print(buf.getvalue()); print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.strip().endswith("NOTORCH")
    for command in ("checkpoints", "data", "train", "analyze", "export", "demo"):
        assert command in out
