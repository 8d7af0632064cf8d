"""The trainer as a user meets it: recipes, run files, checkpoints, bad input refused up front,
NaN stops with a message, cancel leaves a run that resumes to the same weights."""

from __future__ import annotations

import threading

import pytest
import torch
from safetensors.torch import load_file

from engine.api.runs import list_runs, read_run
from engine.api.specs import TrainSpec
from engine.checkpoints.store import CheckpointStore
from engine.distill.labels import IndependentStudent
from engine.errors import JobCancelled, KdcamError
from engine.events import Epoch, Progress
from engine.jobs import JobContext
from engine.models import build_model
from engine.train.recipes import resolve_recipe
from engine.train.suite import run_train_job

pytestmark = pytest.mark.usefixtures("one_thread")

DATASET = "shapes?classes=4&train=96&test=32"



def tiny_spec(workspace, **overrides) -> TrainSpec:
    fields = dict(workspace=str(workspace), dataset=DATASET, teacher="vgg8", student="vgg8", methods=("si", "crd"),
                  recipe="quick", epochs=2, batch_size=16, width=0.06, seed=3, device="cpu",
                  method_options={"crd": {"num_negatives": 32}})
    return TrainSpec(**{**fields, **overrides})


def context(events=None, cancel=None) -> JobContext:
    return JobContext("test", (events.append if events is not None else lambda e: None), cancel or threading.Event())


def weights(workspace, name):
    return load_file(str(workspace / "checkpoints" / f"{name}.safetensors"))


def test_paper_recipe_drops_lr_tenfold_at_150_180_210_and_scales_with_epochs():
    paper = resolve_recipe("paper")
    assert (paper.lr, paper.momentum, paper.weight_decay, paper.batch_size, paper.epochs) == (0.05, 0.9, 5e-4, 64, 240)
    assert [paper.lr_at(e) for e in (150, 151, 181, 211)] == pytest.approx([0.05, 0.005, 0.0005, 0.00005])
    short = resolve_recipe("paper", epochs=24)
    assert short.lr_at(15) == pytest.approx(0.05) and short.lr_at(16) == pytest.approx(0.005)
    quick = resolve_recipe("quick", epochs=10)
    assert quick.lr_at(1) == pytest.approx(quick.lr) and quick.lr_at(10) < quick.lr * 0.05


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"methods": ("si", "fitnet")}, "unknown method 'fitnet'"),
        ({"recipe": "fast"}, "unknown recipe 'fast'"),
        ({"epochs": 0}, "epochs must be"),
        ({"lr": float("nan")}, "learning rate"),
        ({"width": -1.0}, "width"),
        ({"method_options": {"hints": {"tap": "stage9"}}, "methods": ("hints",)}, "no tap 'stage9'"),
        ({"method_options": {"kd": {"temperature": -4}}, "methods": ("kd",)}, "kd.temperature"),
        ({"teacher": "nonsense"}, "neither a checkpoint"),
    ],
)
def test_bad_requests_fail_before_any_training(tmp_path, overrides, message):
    with pytest.raises(KdcamError, match=message):
        run_train_job(tiny_spec(tmp_path, **overrides), context())
    assert list_runs(tmp_path) == []


def test_teacher_checkpoint_with_other_classes_is_refused(tmp_path):
    from engine.api.checkpoints import CheckpointMeta

    store = CheckpointStore(tmp_path / "checkpoints")
    store.save("t10", build_model("vgg8", 10, width=0.06), CheckpointMeta(name="t10", arch="vgg8", num_classes=10,
                                                                           width=0.06, role="teacher"))
    with pytest.raises(KdcamError, match="10 classes"):
        run_train_job(tiny_spec(tmp_path, teacher="t10"), context())


@pytest.mark.slow
def test_suite_writes_checkpoints_with_metadata_and_one_event_per_epoch(tmp_path):
    events = []
    summary = run_train_job(tiny_spec(tmp_path), context(events))
    teacher, (si, crd) = summary.teacher, summary.students
    store = CheckpointStore(tmp_path / "checkpoints")
    meta = store.meta(crd.name)
    assert (meta.role, meta.method, meta.teacher, meta.recipe, meta.run_id) == ("student", "crd", teacher.name,
                                                                                "quick", crd.run_id)
    assert meta.dataset == DATASET and meta.class_names and len(meta.class_names) == 4
    assert meta.accuracy == crd.accuracy
    assert store.meta(crd.name + "-last").epochs == 2
    assert store.meta(teacher.name).role == "teacher"
    run = read_run(tmp_path, crd.run_id or "")
    assert run.state == "finished" and not run.resumable
    assert [e.epoch for e in run.events] == [1, 2]
    record = run.events[-1]
    assert None not in (record.epochs, record.train_acc, record.test_acc, record.lr, record.images_per_s,
                        record.elapsed)
    assert set(record.losses) == {"ce", "crd"} and record.val_acc is not None
    assert run.config.method == "crd" and run.config.teacher == teacher.name
    assert len(list_runs(tmp_path)) == 3
    assert sum(isinstance(e, Epoch) for e in events) == 6

    # the same seed gives the same weights: the basis of the resume tests
    again = tmp_path / "again"
    run_train_job(tiny_spec(again, methods=("si",)), context())
    assert torch.equal(weights(tmp_path, si.name)["classifier.weight"], weights(again, si.name)["classifier.weight"])


@pytest.mark.slow
def test_non_finite_loss_stops_naming_epoch_and_batch_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    original = IndependentStudent.losses

    def poisoned(self, logits, taps, teacher, labels, indices, epoch):
        terms = original(self, logits, taps, teacher, labels, indices, epoch)
        poisoned.calls += 1
        return {"ce": terms["ce"] * float("nan")} if epoch == 2 and poisoned.calls % 6 == 3 else terms

    poisoned.calls = 0
    monkeypatch.setattr(IndependentStudent, "losses", poisoned)
    with pytest.raises(KdcamError, match="epoch 2, batch 3"):
        run_train_job(tiny_spec(tmp_path, methods=("si",)), context())
    (run,) = list_runs(tmp_path)  # the teacher: its first epoch is the last good one
    assert run.state == "failed" and "epoch 2, batch 3" in run.status.message
    assert CheckpointStore(tmp_path / "checkpoints").meta(run.config.name + "-last").epochs == 1


@pytest.mark.slow
def test_cancel_stops_within_a_batch_and_resume_reaches_the_uninterrupted_weights(tmp_path):
    reference = tmp_path / "reference"
    run_train_job(tiny_spec(reference), context())

    cancel = threading.Event()
    seen: list = []

    def emit(event):
        seen.append(event)
        if isinstance(event, Progress) and "crd" in event.phase and event.message == "epoch 2/2" and event.done == 2:
            cancel.set()

    interrupted = tmp_path / "interrupted"
    with pytest.raises(JobCancelled):
        run_train_job(tiny_spec(interrupted), JobContext("test", emit, cancel))
    last = [e for e in seen if isinstance(e, Progress) and "crd" in e.phase][-1]
    assert (last.message, last.done) == ("epoch 2/2", 2)  # no further batch ran
    crd_run = next(r for r in list_runs(interrupted) if r.config.method == "crd")
    assert crd_run.state == "cancelled" and crd_run.resumable and crd_run.last_epoch == 1

    summary = run_train_job(TrainSpec(workspace=str(interrupted), resume=crd_run.run_id), context())
    assert [s.method for s in summary.students] == ["crd+num_negatives32"]  # the variant its options make
    assert read_run(interrupted, crd_run.run_id).state == "finished"
    name = summary.students[0].name + "-last"
    for key, tensor in weights(reference, name).items():
        assert torch.equal(tensor, weights(interrupted, name)[key]), key


def test_a_run_cancelled_before_its_first_epoch_gives_its_name_back(tmp_path):
    """Nothing to resume: starting again must not get ``…-2`` because the dead run still holds the name."""
    cancel = threading.Event()

    def emit(event):
        if isinstance(event, Progress) and "crd" in event.phase and event.message == "epoch 1/2":
            cancel.set()

    with pytest.raises(JobCancelled):
        run_train_job(tiny_spec(tmp_path), JobContext("test", emit, cancel))
    crd_run = next(r for r in list_runs(tmp_path) if r.config.method == "crd")
    assert crd_run.state == "cancelled" and not crd_run.resumable
    again = run_train_job(tiny_spec(tmp_path, methods=("crd",)), context())
    assert again.students[0].name == crd_run.config.name


def test_run_reader_skips_a_torn_last_line_and_refuses_paths(tmp_path):
    run = tmp_path / "runs" / "20260101-000000-000-vgg8"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"name": "vgg8", "role": "teacher", "spec": {}}')
    (run / "status.json").write_text('{"state": "running"}')
    (run / "events.jsonl").write_text('{"epoch": 1, "test_acc": 0.5}\n{"epoch": 2, "te')
    (run / "state.pt").write_bytes(b"x")
    (info,) = list_runs(tmp_path)
    assert info.last_epoch == 1 and info.best_accuracy == 0.5 and info.resumable
    with pytest.raises(KdcamError, match="invalid run id"):
        read_run(tmp_path, "../elsewhere")
    with pytest.raises(KdcamError, match="no run 'missing'"):
        read_run(tmp_path, "missing")
