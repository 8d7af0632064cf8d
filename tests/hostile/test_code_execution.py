"""Code execution: a workspace may carry model code, and kdcam runs it only once the user
has trusted that exact content on this machine.

The checkpoint is made on a "colleague's machine" (another config directory), then opened
here: its model code writes a marker file whenever it runs, so "nothing ran" is checked,
not assumed.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import torch

from engine.api.model_code import UntrustedModelCode
from engine.api.specs import TapsSpec
from engine.checkpoints.chores import run_taps
from engine.cli.main import main
from engine.jobs import JobContext

DATASET = "shapes?classes=4&train=8&test=12"

MODEL = '''
from pathlib import Path
from torch import nn

class Net(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        Path({marker!r}).write_text("model code ran")
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))
'''


def kdcam(workspace: Path, *argv: str) -> int:
    return main(["-w", str(workspace), *argv])


def said(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())  # the console wraps long lines


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(workspace, marker): a workspace holding checkpoint ``evil``, made and trusted elsewhere."""
    marker = tmp_path / "marker"
    (tmp_path / "net.py").write_text(MODEL.format(marker=str(marker)))
    namespace: dict = {}
    exec(compile(MODEL.format(marker=str(tmp_path / "unused")), "net.py", "exec"), namespace)  # noqa: S102 - the test's own model
    torch.save(namespace["Net"]().state_dict(), tmp_path / "net.pth")
    workspace = tmp_path / "ws"
    monkeypatch.setenv("KDCAM_CONFIG_DIR", str(tmp_path / "colleague-config"))
    assert kdcam(workspace, "checkpoints", "import", str(tmp_path / "net.pth"), "--model-def",
                 f"{tmp_path / 'net.py'}:Net", "--name", "evil") == 0
    marker.unlink()
    monkeypatch.setenv("KDCAM_CONFIG_DIR", str(tmp_path / "my-config"))
    return workspace, marker


def analyze(workspace: Path) -> int:
    name = f"a{len(list((workspace / 'analyses').glob('*')))}" if (workspace / "analyses").is_dir() else "a"
    return kdcam(workspace, "analyze", "--teacher", "evil", "--dataset", DATASET, "--check-images", "0",
                 "--device", "cpu", "--name", name)


def taps(workspace: Path) -> list:
    found = run_taps(TapsSpec(str(workspace), "evil"), JobContext("t", lambda event: None, threading.Event()))
    return [(tap.name, tap.channels, tap.height, tap.width) for tap in found.taps]


def test_untrusted_code_never_runs_and_each_refusal_says_how_to_trust(shared, capsys) -> None:
    workspace, marker = shared
    assert kdcam(workspace, "checkpoints", "list") == 0
    assert kdcam(workspace, "checkpoints", "inspect", "evil") == 0
    assert "not trusted" in said(capsys)
    assert kdcam(workspace, "checkpoints", "inspect", "evil", "--json") == 0
    assert json.loads(capsys.readouterr().out)["model_code"]["status"] == "not trusted"
    assert analyze(workspace) == 1
    assert "not trusted on this machine" in said(capsys)
    with pytest.raises(UntrustedModelCode, match="`kdcam checkpoints trust evil`"):
        taps(workspace)
    assert kdcam(workspace, "checkpoints", "trust", "evil") == 1  # no terminal to confirm on
    assert "without confirmation" in said(capsys)
    assert not marker.exists()


def test_trusted_content_runs_and_a_modified_copy_is_refused_again(shared, capsys) -> None:
    workspace, marker = shared
    assert kdcam(workspace, "checkpoints", "trust", "evil", "--yes") == 0
    assert "sha256" in said(capsys)
    assert analyze(workspace) == 0 and marker.exists()
    assert [name for name, *_ in taps(workspace)] == ["features"]
    marker.unlink()
    meta = json.loads((workspace / "checkpoints" / "evil.json").read_text())
    copy = workspace / "checkpoints" / meta["model_def"].rpartition(":")[0]
    copy.write_text(copy.read_text() + "\nprint('changed')\n")
    assert analyze(workspace) == 1
    assert "was modified since import" in said(capsys)
    assert kdcam(workspace, "checkpoints", "trust", "evil", "--yes") == 1  # trust follows content, not names
    with pytest.raises(UntrustedModelCode):
        taps(workspace)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_model_code_outside_the_store_is_refused(shared, capsys, where: str) -> None:
    """Even content the user trusts does not run from a path that leaves the store."""
    workspace, marker = shared
    assert kdcam(workspace, "checkpoints", "trust", "evil", "--yes") == 0
    store = workspace / "checkpoints"
    meta_file = store / "evil.json"
    meta = json.loads(meta_file.read_text())
    inside, _, name = meta["model_def"].rpartition(":")
    outside = workspace.parent / "outside.py"
    outside.write_bytes((store / inside).read_bytes())  # the same, trusted content
    if where == "parent":
        meta["model_def"] = f"../outside.py:{name}"
    elif where == "absolute":
        meta["model_def"] = f"{outside}:{name}"
    else:
        (store / inside).unlink()
        os.symlink(outside, store / inside)
    meta_file.write_text(json.dumps(meta))
    capsys.readouterr()
    assert analyze(workspace) == 1
    assert "store" in said(capsys)
    assert kdcam(workspace, "checkpoints", "trust", "evil", "--yes") == 1
    assert not marker.exists()
