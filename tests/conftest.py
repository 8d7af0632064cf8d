"""Suite-wide fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_trust_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test trusts model code in its own config directory, never the user's ~/.config/kdcam."""
    directory = tmp_path_factory.mktemp("kdcam-config")
    monkeypatch.setenv("KDCAM_CONFIG_DIR", str(directory))
    return directory
