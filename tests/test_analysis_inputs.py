"""Bad input fails before any work, with a message naming the problem, and leaves no files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from engine.analysis.job import run_analysis_job
from engine.api.checkpoints import CheckpointMeta
from engine.api.specs import AnalyzeSpec
from engine.checkpoints.store import CheckpointStore
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import build_model

DATASET = "shapes?classes=4&train=8&test=16"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    store = CheckpointStore(root / "checkpoints")
    for name, arch, classes in [("teacher", "vgg8", 4), ("student", "vgg8", 4), ("wide", "vgg8", 7),
                                ("attn", "attention_cnn", 4)]:
        store.save(name, build_model(arch, classes, width=0.125),
                   CheckpointMeta(name=name, arch=arch, num_classes=classes, width=0.125))
    data = root / "data"
    data.mkdir()
    empty = np.zeros((0, 32, 32, 3), np.uint8)
    np.savez(data / "empty.npz", images=empty, labels=np.zeros(0, np.int64))
    tiny = np.random.default_rng(0).integers(0, 255, (6, 16, 16, 3), dtype=np.uint8)
    np.savez(data / "tiny.npz", images=tiny, labels=np.arange(6) % 4)
    gray = np.zeros((6, 32, 32, 1), np.uint8)
    np.savez(data / "gray.npz", images=gray, labels=np.arange(6) % 4)
    return root


def _fails(workspace: Path, match: str, **changes) -> None:
    fields = dict(workspace=str(workspace), teacher="teacher", students=("student",), dataset=DATASET,
                  device="cpu", check_images=4)
    spec = AnalyzeSpec(**{**fields, **changes})
    analyses = workspace / "analyses"
    before = set(analyses.iterdir()) if analyses.exists() else set()
    with pytest.raises(KdcamError, match=match):
        run_analysis_job(spec, JobContext("test", lambda event: None, threading.Event()))
    assert (set(analyses.iterdir()) if analyses.exists() else set()) == before


def test_student_with_another_class_count(workspace):
    _fails(workspace, r"student 'wide' has 7 classes but teacher 'teacher' has 4", students=("student", "wide"))


def test_more_images_than_the_split_holds(workspace):
    _fails(workspace, r"--n 17 is larger than .* \(16 images\)", n=17)


def test_empty_dataset(workspace):
    _fails(workspace, "has no images", dataset=f"npz:{workspace / 'data' / 'empty.npz'}", split="train")


def test_images_the_models_cannot_take(workspace):
    _fails(workspace, r"'teacher' takes 32x32 images but dataset .* has 16x16", dataset=f"npz:{workspace / 'data' / 'tiny.npz'}")
    _fails(workspace, r"1-channel images but checkpoint 'teacher' takes 3", dataset=f"npz:{workspace / 'data' / 'gray.npz'}")


def test_unknown_layer_lists_the_taps(workspace):
    _fails(workspace, r"unknown layer 'stage9' .* stage1", layer="stage9")


def test_unknown_checkpoint_method_and_target(workspace):
    _fails(workspace, r"no checkpoint named 'nobody'", students=("nobody",))
    _fails(workspace, r"unknown CAM method 'gradcam\+\+\+'", method="gradcam+++")
    _fails(workspace, r"target 'class:9' is out of range", target="class:9")
    _fails(workspace, r"unknown target 'best'", target="best")
    # the same parser as the front-ends: a negative or non-integer class, and targets the job would
    # compare as written (padded, leading zero) are refused before anything is loaded
    _fails(workspace, r"class index must be non-negative", target="class:-1")
    _fails(workspace, r"expected class:K with an integer K", target="class:x")
    _fails(workspace, r"target ' label': write it as 'label'", target=" label")
    _fails(workspace, r"target 'class:01': write it as 'class:1'", target="class:01")


def test_attention_maps_need_attention_models(workspace):
    _fails(workspace, r"method 'attention' needs a model with its own attention map", teacher="attn", method="attention")


def test_nonsense_counts(workspace):
    _fails(workspace, "--n must be at least 1", n=0)
    _fails(workspace, "appear once", students=("student", "student"))


def test_an_existing_name_is_not_overwritten(workspace, tmp_path):
    (workspace / "analyses" / "taken").mkdir(parents=True)
    try:
        with pytest.raises(KdcamError, match="already exists"):
            run_analysis_job(AnalyzeSpec(workspace=str(workspace), teacher="teacher", students=("student",),
                                         dataset=DATASET, name="taken"),
                             JobContext("test", lambda event: None, threading.Event()))
    finally:
        (workspace / "analyses" / "taken").rmdir()


def test_models_with_more_classes_than_the_dataset_names_are_diagnosed(workspace):
    """A 7-class teacher on 4-class data: predictions of classes 4..6 must not break the diagnosis."""
    import json

    spec = AnalyzeSpec(workspace=str(workspace), teacher="wide", students=(), dataset=DATASET, device="cpu",
                       check_images=2, name="wide")
    run_analysis_job(spec, JobContext("test", lambda event: None, threading.Event()))
    results = json.loads((workspace / "analyses" / "wide" / "results.json").read_text())
    confusion = np.array(results["diagnosis"]["wide"]["confusion"])
    assert confusion.shape == (7, 7) and confusion.sum() == 16
    assert [c["name"] for c in results["diagnosis"]["wide"]["per_class"]][4:] == ["class 4", "class 5", "class 6"]
