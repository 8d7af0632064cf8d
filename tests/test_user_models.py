"""A plain ``nn.Module`` (a class, or a factory function with arguments) is a first-class model:
import → analyse (every CAM method, equal to pytorch-grad-cam) → train as teacher and as
student (kd, hints, crd) → export, exactly as for the zoo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from engine.cam import compute_cams, postprocess
from engine.checkpoints.store import CheckpointStore
from engine.checkpoints.user_model import UserModel
from engine.cli.main import main
from engine.errors import KdcamError
from tests.test_cam_reference import REFERENCE
from tests.test_cam_support import batch, reference_raw

DATASET = "shapes?classes=4&train=16&test=12"

MODEL_FILE = '''
from torch import nn


class Net(nn.Module):
    """A typical hand-written CNN: nothing kdcam-specific."""

    def __init__(self, num_classes=10, width=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def small_net(width=8, num_classes=10):
    """The factory style of most model files."""
    return Net(num_classes=num_classes, width=width)
'''


def kdcam(workspace: Path, *argv: str) -> int:
    return main(["-w", str(workspace), *argv])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "net.py").write_text(MODEL_FILE)
    namespace: dict = {}
    exec(compile(MODEL_FILE, "net.py", "exec"), namespace)  # noqa: S102 - the test's own model
    torch.manual_seed(0)
    torch.save(namespace["Net"](num_classes=4).state_dict(), tmp_path / "net.pth")
    wide = namespace["small_net"](width=6, num_classes=4)
    # an old file without BatchNorm's counters: torch fills them with zero, so does kdcam
    state = {k: v for k, v in wide.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "wide.pth")
    return tmp_path


def test_class_imports_and_every_cam_method_matches_pytorch_grad_cam(files: Path) -> None:
    ws = files / "ws"
    assert kdcam(ws, "checkpoints", "import", str(files / "net.pth"), "--model-def", f"{files / 'net.py'}:Net",
                 "--name", "net") == 0
    model, meta = CheckpointStore(ws / "checkpoints").load("net")
    assert isinstance(model, UserModel) and meta.num_classes == 4
    assert model.default_cam_tap == "features" and model.tap_names == ("features",)
    images, _ = batch(3)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    for tap in ("features", "features.4"):  # the default, and any module path (--layer)
        for method, reference in REFERENCE.items():
            ours = compute_cams(model, images, labels, method=method, tap=tap)
            raw = reference_raw(reference, model, tap, images, [ClassifierOutputTarget(int(c)) for c in labels])
            expected, _ = postprocess(raw, (32, 32))
            error = (ours.maps - expected).abs().amax(dim=(1, 2))
            if method == "eigencam":  # SVD's sign is arbitrary in the reference
                error = torch.minimum(error, (ours.maps - postprocess(-raw, (32, 32))[0]).abs().amax(dim=(1, 2)))
            assert error.max().item() <= 1e-4, (tap, method)
    with pytest.raises(KdcamError, match="unknown layer 'nope'.*any submodule path"):
        compute_cams(model, images, labels, tap="nope")


def test_factory_with_model_args_trains_as_teacher_and_student_then_evaluates_analyses_and_exports(
        files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = files / "ws"
    assert kdcam(ws, "checkpoints", "import", str(files / "wide.pth"), "--model-def",
                 f"{files / 'net.py'}:small_net", "--model-args", '{"width": 6}', "--name", "wide",
                 "--dataset", DATASET) == 0
    store = CheckpointStore(ws / "checkpoints")
    meta = store.meta("wide")
    assert meta.model_args == {"width": 6} and meta.model_def == f"model-defs/{meta.model_def_sha256}.py:small_net"
    assert kdcam(ws, "train", "--teacher", "wide", "--student", "wide", "--methods", "kd,hints,crd",
                 "--dataset", DATASET, "--epochs", "1", "--batch-size", "8", "--device", "cpu",
                 "--option", "crd.num_negatives=8", "--option", "crd.embed_dim=8",
                 "--validation", "0") == 0  # 16 images of 4 classes: too few to hold out a validation split
    students = [m for m in store.list() if m.role == "student" and not m.name.endswith("-last")]
    assert sorted(m.method for m in students) == ["crd", "hints", "kd"]
    for student in students:  # trained students keep the user's model code and arguments
        assert (student.model_def, student.model_args) == (meta.model_def, {"width": 6})
        assert isinstance(store.load(student.name)[0], UserModel)
    kd = next(m.name for m in students if m.method == "kd")
    capsys.readouterr()
    assert kdcam(ws, "eval", "wide", kd, "--dataset", DATASET, "--device", "cpu", "--json") == 0
    evaluated = {r["checkpoint"]: r for r in json.loads(capsys.readouterr().out)}
    assert evaluated[kd]["top1"] == pytest.approx(store.meta(kd).accuracy, abs=1e-9)  # what the trainer recorded
    assert evaluated[kd]["n"] == 12 and sum(c["n"] for c in evaluated[kd]["per_class"]) == 12
    assert evaluated["wide"]["top5"] is None and 0 <= evaluated["wide"]["ece"] <= 1
    assert kdcam(ws, "analyze", "--teacher", "wide", "--students", kd, "--dataset", DATASET, "--check-images", "2",
                 "--batch", "4", "--device", "cpu", "--name", "user", "--layer", "features.5") == 0
    results = json.loads((ws / "analyses" / "user" / "results.json").read_text())
    assert [(m["name"], m["tap"], m["accuracy"]["n"]) for m in results["models"]] == [("wide", "features.5", 12),
                                                                                      (kd, "features.5", 12)]
    assert kdcam(ws, "export", "user", "--formats", "json,csv") == 0
    assert json.loads((ws / "exports" / "user" / "results.json").read_text())["id"] == "user"


def test_model_args_are_validated(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad, problem in (('[1, 2]', "must be a JSON object"), ('{"a": {"b": {"c": {"d": {"e": 1}}}}}', "too large"),
                         ('{"1x": 2}', "not a valid argument name"), ("{nope", "not valid JSON")):
        with pytest.raises(SystemExit):
            kdcam(files / "ws", "checkpoints", "import", str(files / "net.pth"), "--model-def",
                  f"{files / 'net.py'}:Net", "--model-args", bad)
        assert problem in capsys.readouterr().err
