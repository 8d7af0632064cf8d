"""End to end: an analysis of a small trained teacher and its students on the embedded shapes data.

The models are trained here for a few epochs (seconds on a CPU) so that the checks that need
a *trained* model — maps on the object, maps that change when the weights are randomised —
have something real to measure.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.analysis.job import run_analysis_job
from engine.api import analyses as analysis_results
from engine.api.analyses import AnalysisFiles
from engine.api.bands import overall_band
from engine.api.checkpoints import CheckpointMeta
from engine.api.results import SCHEMA_VERSION
from engine.api.specs import AnalyzeSpec
from engine.checkpoints.store import CheckpointStore
from engine.data import load_split
from engine.data.loader import DeviceLoader
from engine.errors import JobCancelled
from engine.events import Progress
from engine.jobs import JobContext
from engine.models import build_model
from tests.torch_threads import single_thread

pytestmark = pytest.mark.slow

DATASET = "shapes?classes=4&train=800&test=96"
CLASSES = 4


def _train(model: torch.nn.Module, epochs: int, seed: int) -> torch.nn.Module:
    train = load_split(DATASET, "train")
    loader = DeviceLoader(train, 64, train=True, seed=seed)
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for images, labels, _ in loader:
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def _save(store: CheckpointStore, name: str, model: torch.nn.Module, arch: str, width: float, role: str) -> None:
    data = load_split(DATASET, "test")
    store.save(name, model, CheckpointMeta(name=name, arch=arch, num_classes=CLASSES, width=width, role=role,
                                           mean=data.mean, std=data.std, dataset=DATASET))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    store = CheckpointStore(root / "checkpoints")
    with single_thread():
        torch.manual_seed(0)
        teacher = _train(build_model("vgg8", CLASSES, width=0.125), epochs=5, seed=0)
        _save(store, "teacher", teacher, "vgg8", 0.125, "teacher")
        student = build_model("vgg8", CLASSES, width=0.125)
        student.load_state_dict(teacher.state_dict())
        _save(store, "student", _train(student, epochs=1, seed=1), "vgg8", 0.125, "student")
        torch.manual_seed(1)
        _save(store, "attentive", build_model("attention_cnn", CLASSES, width=0.125), "attention_cnn", 0.125, "student")
    return root


def _context(events: list, cancel: threading.Event | None = None) -> JobContext:
    return JobContext("test", events.append, cancel or threading.Event())


def _spec(workspace: Path, **changes) -> AnalyzeSpec:
    fields = dict(workspace=str(workspace), teacher="teacher", students=("student", "attentive"), dataset=DATASET,
                  batch_size=32, check_images=24, deletion_steps=8, resamples=500, device="cpu")
    return AnalyzeSpec(**{**fields, **changes})


@pytest.fixture(scope="module")
def analysis(workspace: Path) -> tuple[dict, list]:
    events: list = []
    with single_thread():
        outcome = run_analysis_job(_spec(workspace, name="main"), _context(events))
    return outcome, events


def test_writes_a_complete_readable_analysis(workspace, analysis):
    outcome, events = analysis
    assert outcome.id == "main"
    assert [info.id for info in analysis_results.list_analyses(workspace)] == ["main"]
    files = AnalysisFiles.open(workspace, "main")
    results = files.results
    assert results.version == SCHEMA_VERSION
    n = results.dataset.n
    assert n == 96 and results.dataset.has_masks
    images = files.images
    assert images.shape == (n, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, load_split(DATASET, "test").images)
    for model in ("teacher", "student", "attentive"):
        maps = files.maps(model)
        assert isinstance(maps, np.memmap) and maps.shape == (n, 32, 32) and maps.dtype == np.uint8
    per_image = files.per_image
    assert per_image["models"].tolist() == ["teacher", "student", "attentive"]
    assert per_image["pearson"].shape == (2, n)
    assert per_image["attention_models"].tolist() == ["attentive"]
    assert per_image["attention_pearson"].shape == (1, n)
    assert any(isinstance(e, Progress) and e.phase == "maps" and e.done == e.total for e in events)


def test_reports_pointing_game_for_every_model_and_a_trained_model_beats_chance(workspace, analysis):
    files = AnalysisFiles.open(workspace, "main")
    masks = files.masks()
    chance = float(np.asarray(masks).mean())  # a peak dropped at random lands on the object this often
    pointing = {m.name: m.mask.pointing_game for m in files.results.models if m.mask}
    assert set(pointing) == {"teacher", "student", "attentive"}
    assert all(p.mean is not None and p.ci_low is not None and p.ci_high is not None and
               0.0 <= p.mean <= 1.0 and p.ci_low <= p.mean <= p.ci_high for p in pointing.values())
    assert (pointing["teacher"].mean or 0) > chance + 0.1


def test_randomisation_check_separates_trained_maps_from_random_ones(workspace, analysis):
    files = AnalysisFiles.open(workspace, "main")
    assert files.results.sanity is not None
    check = files.results.sanity.methods["gradcam"]
    # the teacher's maps barely resemble those of its randomised copy...
    assert check["teacher"].passed is True
    trained_vs_random = check["teacher"].spearman.mean
    # ...while a student fine-tuned from it looks where it looks
    trained_vs_trained = files.results.pair("student").metrics["spearman"].mean
    assert trained_vs_trained is not None and trained_vs_random is not None
    assert trained_vs_trained > trained_vs_random + 0.3
    random_maps = files.extra_maps("sanity", "teacher")
    assert random_maps is not None
    assert random_maps.shape == (24, 32, 32)


def test_pair_aggregates_are_consistent_with_per_image_values(workspace, analysis):
    files = AnalysisFiles.open(workspace, "main")
    results, per_image = files.results, files.per_image
    for s, pair in enumerate(results.pairs):
        valid = ~(per_image["degenerate"][0] | per_image["degenerate"][s + 1])
        assert pair.n_valid == int(valid.sum())
        pearson = per_image["pearson"][s]
        assert np.isnan(pearson[~valid]).all()
        assert pair.metrics["pearson"].mean == pytest.approx(float(pearson[valid].mean()), abs=1e-6)
        assert sum(split.n for split in pair.splits.values()) == results.dataset.n
        means = {k: pair.metrics[k].mean for k in ("pearson", "l2_similarity", "iou", "kl")}
        assert pair.band == overall_band(means)
        agreement = (per_image["preds"][0] == per_image["preds"][s + 1]).mean()
        assert pair.agreement.mean == pytest.approx(agreement)
    accuracy = (per_image["preds"][0] == per_image["labels"]).mean()
    assert results.models[0].accuracy.mean == pytest.approx(accuracy)


def test_stored_maps_are_the_quantised_cams(workspace, analysis):
    from engine.cam import compute_cams

    model, meta = CheckpointStore(workspace / "checkpoints").load("teacher")
    files = AnalysisFiles.open(workspace, "main")
    images = torch.from_numpy(np.array(files.images[:8]))
    mean, std = torch.tensor(meta.mean).view(1, 3, 1, 1), torch.tensor(meta.std).view(1, 3, 1, 1)
    x = (images.permute(0, 3, 1, 2).float() / 255 - mean) / std
    labels = files.per_image["labels"][:8]
    expected = compute_cams(model, x, torch.from_numpy(labels)).maps
    stored = np.asarray(files.maps("teacher")[:8]) / 255.0
    assert np.abs(stored - expected.numpy()).max() <= 0.5 / 255 + 1e-6


def test_diagnosis_attention_and_faithfulness_sections(workspace, analysis):
    files = AnalysisFiles.open(workspace, "main")
    results = files.results
    diagnosis = results.diagnosis["teacher"]
    confusion = np.array(diagnosis.confusion)
    assert confusion.shape == (CLASSES, CLASSES) and confusion.sum() == results.dataset.n
    assert diagnosis.summary and diagnosis.summary[0].startswith("Accuracy")
    rows = [item for items in diagnosis.worst_errors.values() for item in items]
    for cls, items in diagnosis.worst_errors.items():
        confidences = [item.confidence for item in items]
        assert confidences == sorted(confidences, reverse=True)
        assert all(item.predicted != cls for item in items)
    true_maps = files.extra_maps("diagnosis_true", "teacher")
    pred_maps = files.extra_maps("diagnosis_pred", "teacher")
    assert true_maps is not None and pred_maps is not None
    assert true_maps.shape[0] == pred_maps.shape[0] == len(rows)
    assert list(results.attention) == ["attentive"]
    pearson = results.attention["attentive"]["pearson"]
    assert not isinstance(pearson, int) and pearson.n > 0
    assert results.faithfulness is not None
    for model in ("teacher", "student", "attentive"):
        entry = results.faithfulness.models[model]
        assert 0.0 <= (entry["deletion_auc"].mean or -1) <= 1.0 and 0.0 <= (entry["insertion_auc"].mean or -1) <= 1.0


def test_cancelling_leaves_no_directory(workspace):
    cancel = threading.Event()

    def cancel_after_first_batch(event):
        if isinstance(event, Progress) and event.phase == "maps":
            cancel.set()

    ctx = JobContext("test", cancel_after_first_batch, cancel)
    with pytest.raises(JobCancelled), single_thread():
        run_analysis_job(_spec(workspace, name="cancelled"), ctx)
    leftovers = [p.name for p in (workspace / "analyses").iterdir() if p.name != "main"]
    assert leftovers == []
