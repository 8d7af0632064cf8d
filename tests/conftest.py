"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.torch_threads import single_thread


@pytest.fixture(autouse=True)
def _private_trust_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test trusts model code in its own config directory, never the user's ~/.config/kdcam."""
    directory = tmp_path_factory.mktemp("kdcam-config")
    monkeypatch.setenv("KDCAM_CONFIG_DIR", str(directory))
    return directory


@pytest.fixture
def one_thread() -> Iterator[None]:
    """For modules that train or analyse tiny models: ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    with single_thread():
        yield
