"""Baselines give similarity numbers meaning: every analysis compares each model with an independent
reference (the ``si`` student by default, or a model named by ``--baseline``), paired over images.

Fast: untrained tiny models (what is checked is the bookkeeping and the statistics, not learning),
and the interval's coverage on synthetic paired data.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.analysis.aggregate import StatBatch, paired_differences
from engine.analysis.bootstrap import bootstrap_stats
from engine.analysis.job import run_analysis_job
from engine.api.analyses import AnalysisFiles, load_results, read_results
from engine.api.checkpoints import CheckpointMeta
from engine.api.specs import AnalyzeSpec
from engine.checkpoints.store import CheckpointStore
from engine.data import load_split
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import build_model

DATASET = "shapes?classes=4&train=40&test=48&shortcut=0.9"


# -- the statistics ----------------------------------------------------------------------------
def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time():
    """Two models scored on the same images: per-image scores share the image's difficulty, so the
    paired interval (bootstrap of the per-image difference) must cover the true difference ~95%."""
    rng = np.random.default_rng(11)
    trials, n, true_difference = 300, 120, 0.05
    difficulty = rng.normal(0.6, 0.2, size=(trials, n))  # shared by both models on each image
    student = difficulty + true_difference + rng.normal(0, 0.05, size=(trials, n))
    baseline = difficulty + rng.normal(0, 0.05, size=(trials, n))
    stats = bootstrap_stats(student - baseline, resamples=1000, seed=2)
    covered = np.mean([s.ci_low <= true_difference <= s.ci_high for s in stats])
    assert 0.91 <= covered <= 0.98, covered
    # pairing is what makes the difference measurable: the unpaired interval is several times wider
    paired_width = np.median([s.ci_high - s.ci_low for s in stats])
    separate = bootstrap_stats(np.concatenate([student, baseline]), resamples=1000, seed=2)
    unpaired_width = np.median([np.hypot(a.ci_high - a.ci_low, b.ci_high - b.ci_low)
                                for a, b in zip(separate[:trials], separate[trials:], strict=True)])
    assert unpaired_width > 3 * paired_width


def test_paired_differences_use_only_images_where_both_are_defined():
    stats = StatBatch(4)
    student = {"pearson": np.array([0.9, 0.8, np.nan, 0.5]), "accuracy": np.array([1.0, 0.0, 1.0, 1.0])}
    baseline = {"pearson": np.array([0.7, np.nan, 0.6, 0.4]), "accuracy": np.array([0.0, 0.0, 1.0, 0.0])}
    refs = paired_differences(student, baseline, stats)
    resolved = stats.resolve(refs, resamples=200, seed=0)
    assert resolved["pearson"]["n"] == 2 and resolved["pearson"]["mean"] == pytest.approx((0.2 + 0.1) / 2)
    assert resolved["accuracy"]["n"] == 4 and resolved["accuracy"]["mean"] == pytest.approx(0.5)


# -- an analysis with a baseline ---------------------------------------------------------------
def _save(store: CheckpointStore, name: str, role: str, method: str | None, seed: int) -> None:
    data = load_split(DATASET, "test")
    torch.manual_seed(seed)
    model = build_model("vgg8", 4, width=0.0625)
    store.save(name, model, CheckpointMeta(name=name, arch="vgg8", num_classes=4, width=0.0625, role=role,
                                           method=method, mean=data.mean, std=data.std, dataset=DATASET))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    store = CheckpointStore(root / "checkpoints")
    for name, role, method, seed in (("t", "teacher", "ce", 0), ("t2", "teacher", "ce", 1),
                                     ("s-si", "student", "si", 2), ("s-kd", "student", "kd", 3)):
        _save(store, name, role, method, seed)
    return root


def _analyse(workspace: Path, **changes: object) -> str:
    fields: dict[str, object] = dict(workspace=str(workspace), teacher="t", students=("s-kd", "s-si"),
                                     dataset=DATASET, batch_size=48, check_images=0, resamples=300, device="cpu")
    fields.update(changes)
    spec = AnalyzeSpec(**fields)  # type: ignore[arg-type]
    return run_analysis_job(spec, JobContext("test", lambda e: None, threading.Event())).id


@pytest.fixture(scope="module")
def default_analysis(workspace: Path) -> str:
    return _analyse(workspace, name="default")


def test_the_si_student_is_the_default_baseline_and_every_other_model_is_compared_with_it(workspace,
                                                                                      default_analysis):
    files = AnalysisFiles.open(workspace, default_analysis)
    results = files.results
    assert results.baseline == "s-si"
    assert results.baseline_pair is not None and results.baseline_pair.vs_baseline is None
    assert results.model("s-si").vs_baseline is None
    kd_pair = results.pair("s-kd")
    assert kd_pair.vs_baseline is not None and set(kd_pair.vs_baseline) >= {"pearson", "iou", "kl", "agreement"}
    per_image = files.per_image
    s_kd, s_si = per_image["students"].tolist().index("s-kd"), per_image["students"].tolist().index("s-si")
    difference = per_image["pearson"][s_kd] - per_image["pearson"][s_si]
    assert kd_pair.vs_baseline["pearson"].mean == pytest.approx(np.nanmean(difference), abs=1e-6)
    stat = kd_pair.vs_baseline["pearson"]
    assert stat.ci_low is not None and stat.ci_high is not None and stat.ci_low <= stat.mean <= stat.ci_high
    # accuracy and ground-truth localisation, for the teacher too
    correct = per_image["correct"].astype(float)
    teacher_gap = results.teacher.vs_baseline
    assert teacher_gap is not None
    assert teacher_gap["accuracy"].mean == pytest.approx(correct[0].mean() - correct[2].mean())
    assert {"pointing_game", "energy_in_mask", "energy_on_distractors", "energy_on_cue"} <= set(teacher_gap)


def test_distractor_and_cue_energy_are_scored_for_every_model(workspace, default_analysis):
    files = AnalysisFiles.open(workspace, default_analysis)
    data = load_split(DATASET, "test")
    maps = files.maps("t").astype(np.float64)
    with np.errstate(invalid="ignore"):  # an all-zero map has no share anywhere
        on_cue = (maps * data.cue_masks).sum((1, 2)) / maps.sum((1, 2))
    stored = files.per_image["energy_on_cue"][0]
    has_cue = data.cue_masks.any((1, 2)) & np.isfinite(stored)
    np.testing.assert_allclose(stored[has_cue], on_cue[has_cue], atol=5e-3)  # maps are stored as uint8
    no_distractor = ~data.distractor_masks.any((1, 2))
    assert no_distractor.any() and np.isnan(files.per_image["energy_on_distractors"][:, no_distractor]).all()
    for model in files.results.models:
        assert model.mask is not None and model.mask.energy_on_distractors is not None
        assert model.mask.energy_on_cue is not None and model.follows_cue is not None
    np.testing.assert_array_equal(files.per_image["cue_labels"], data.cue_labels)


def test_a_baseline_outside_the_students_joins_the_analysis_as_its_own_role(workspace):
    analysis_id = _analyse(workspace, name="second-teacher", students=("s-kd",), baseline="t2")
    results = load_results(workspace, analysis_id)
    assert results.baseline == "t2" and results.model("t2").role == "baseline"
    assert [p.student for p in results.pairs] == ["s-kd", "t2"]
    assert results.pair("s-kd").vs_baseline is not None and results.pair("t2").vs_baseline is None


def test_without_an_si_student_there_is_no_baseline_and_a_teacher_cannot_be_its_own(workspace):
    results = load_results(workspace, _analyse(workspace, name="no-baseline", students=("s-kd",)))
    assert results.baseline is None and results.pair("s-kd").vs_baseline is None
    with pytest.raises(KdcamError, match="is the teacher"):
        _analyse(workspace, name="bad", baseline="t")


def test_results_written_before_baselines_still_read(workspace, default_analysis, tmp_path):
    """A v1 results.json without baseline, vs_baseline, distractor/cue fields reads as None for them."""
    data = json.loads((workspace / "analyses" / default_analysis / "results.json").read_text())
    data.pop("baseline")
    for model in data["models"]:
        model.pop("vs_baseline", None)
        model.pop("follows_cue", None)
        for key in ("energy_on_distractors", "energy_on_cue"):
            model["mask"].pop(key)
    for pair in data["pairs"]:
        pair.pop("vs_baseline", None)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    old = read_results(path)
    assert old.baseline is None and old.baseline_pair is None
    assert all(m.vs_baseline is None and m.mask is not None and m.mask.energy_on_cue is None for m in old.models)
    assert all(p.vs_baseline is None for p in old.pairs)


def test_a_forged_baseline_section_is_refused(workspace, default_analysis, tmp_path):
    data = json.loads((workspace / "analyses" / default_analysis / "results.json").read_text())
    path = tmp_path / "results.json"
    unknown_baseline = json.loads(json.dumps(data))
    unknown_baseline["baseline"] = "nobody"
    unknown_metric = json.loads(json.dumps(data))
    unknown_metric["pairs"][0]["vs_baseline"]["made_up"] = unknown_metric["pairs"][0]["vs_baseline"]["pearson"]
    for broken, message in ((unknown_baseline, "nobody"), (unknown_metric, "made_up")):
        path.write_text(json.dumps(broken))
        with pytest.raises(KdcamError, match=message):
            read_results(path)


def test_the_report_shows_the_baseline_row_and_each_difference_with_its_interval(workspace, default_analysis):
    from engine.reports.report import baseline_table, leaderboard, models_table
    from engine.reports.source import AnalysisSource

    source = AnalysisSource.open(workspace, default_analysis)
    table = baseline_table(source)
    assert "never met the teacher" in table and "Δ accuracy" in table and "Δ energy on the cue" in table
    kd = source.results.pair("s-kd").vs_baseline
    assert kd is not None and f"[{kd['pearson'].ci_low:+.4f}, {kd['pearson'].ci_high:+.4f}]" in table
    assert "si (baseline)" in leaderboard(source)
    assert "energy on distractors" in models_table(source) and "follows cue" in models_table(source)
