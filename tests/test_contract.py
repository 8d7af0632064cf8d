"""The contract between the engine and its front-ends holds: the TUI and the CLI reach the
engine only through ``engine.api``, ``engine.jobs`` and ``engine.events``; every spec has a
runner that resolves; the catalogue names exactly what the engine implements."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from engine.api import catalogue, specs
from engine.runners import RUNNERS

ROOT = Path(__file__).resolve().parents[1]
#: what a front-end may import from the engine (``engine`` itself only for ``__version__``)
ALLOWED = ("engine.api", "engine.jobs", "engine.events", "engine.errors")


def _engine_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") if node.module == "engine" else
                      (node.lineno, node.module) for alias in node.names]
    return [(line, name) for line, name in found if name == "engine" or name.startswith("engine.")]


def _allowed(name: str, own_package: str | None) -> bool:
    if name == "engine.__version__" or name.startswith("engine.api.") or name == "engine.api":
        return True
    if own_package and (name == own_package or name.startswith(own_package + ".")):
        return True
    return any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED)


@pytest.mark.parametrize(("folder", "own"), [("tui", None), ("engine/cli", "engine.cli")])
def test_front_ends_import_only_the_contract(folder: str, own: str | None) -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in sorted((ROOT / folder).rglob("*.py"))
                 for line, name in _engine_imports(path) if not _allowed(name, own)]
    assert offenders == [], "front-ends must use engine.api, engine.jobs and engine.events only:\n" + "\n".join(
        offenders)


def test_the_boundary_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "screen.py"
    bad.write_text("from engine.checkpoints.store import CheckpointStore\nimport engine.train.suite\n")
    names = [name for _, name in _engine_imports(bad)]
    assert [n for n in names if not _allowed(n, None)] == ["engine.checkpoints.store", "engine.train.suite"]


def test_every_spec_has_a_runner_that_resolves() -> None:
    spec_classes = {cls for _, cls in inspect.getmembers(specs, inspect.isclass)
                    if issubclass(cls, specs.Spec) and cls is not specs.Spec}
    assert spec_classes == set(RUNNERS), "each spec class needs exactly one runner"
    for cls, runner in RUNNERS.items():
        # each runner imports its engine module and calls one function: both must exist
        source = inspect.getsource(runner)
        module = source.split("from ", 1)[1].split(" import ", 1)[0]
        function = source.split(" import ", 1)[1].split()[0]
        assert callable(getattr(importlib.import_module(module), function)), f"{cls.__name__} -> {module}.{function}"
        assert dataclasses.is_dataclass(cls) and cls.kind


def test_catalogue_names_match_the_engine() -> None:
    from engine.cam.compute import METHODS
    from engine.distill import METHODS as DISTILLERS
    from engine.train.recipes import RECIPES

    assert METHODS == catalogue.CAM_METHODS
    assert tuple(DISTILLERS) == catalogue.KD_METHODS
    assert all(cls.key == key for key, cls in DISTILLERS.items())
    assert tuple(RECIPES) == catalogue.RECIPES
    from engine.api.datasets import DESCRIPTIONS
    from engine.data import registry

    assert set(registry._LOADERS) == set(DESCRIPTIONS)  # every dataset the contract names has a loader


@pytest.mark.parametrize(("text", "expected"), [("label", ("label", None)), ("own", ("own", None)),
                                                ("class:3", ("class", 3))])
def test_parse_target_accepts_the_catalogue_targets(text: str, expected: tuple[str, int | None]) -> None:
    assert catalogue.parse_target(text) == expected


@pytest.mark.parametrize(("text", "expected"), [(" own ", "own"), ("class:03", "class:3"), ("class:+2", "class:2")])
def test_canonical_target_is_how_the_analysis_job_compares_targets(text: str, expected: str) -> None:
    assert catalogue.canonical_target(text) == expected == catalogue.canonical_target(expected)


@pytest.mark.parametrize("text", ["class:x", "class:-1", "predicted", ""])
def test_parse_target_refuses_anything_else(text: str) -> None:
    from engine.errors import KdcamError

    with pytest.raises(KdcamError, match="target"):
        catalogue.parse_target(text)
