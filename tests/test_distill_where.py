"""Methods that distil where to look (``cat``, ``xa``), logit standardisation, and the way back from
an analysis to training: each loss against a written-out computation on tiny tensors, gradients
to the student and never the teacher, standardisation's invariances, ``xa``'s map equal to the
analysis engine's Grad-CAM, and the spec/command a student that looks elsewhere is offered."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.api import catalogue
from engine.api.analyses import load_results
from engine.api.followup import looks_elsewhere, train_command, where_to_look_hints, where_to_look_spec
from engine.api.results import AnalysisResults
from engine.api.specs import DemoSpec, TrainSpec
from engine.api.workspace import Workspace
from engine.cam import compute_cams, postprocess
from engine.distill import build_distiller
from engine.distill.base import TeacherOutputs
from engine.distill.cat import cat_loss, class_activation_maps, linear_head, pick_classes
from engine.distill.dkd import dkd_terms
from engine.distill.kd import kd_loss, standardize
from engine.distill.xa import explanation_loss, gradcam_on_graph, upsampled
from engine.errors import KdcamError
from engine.models import TappedModel, architectures, build_model
from tests.test_distill import S, T, Y, kl, softmax
from tests.test_reports_fixture import write_synthetic_analysis


def zscore(v: np.ndarray) -> np.ndarray:
    """The paper's code: (v − mean) / (unbiased std + 1e-7)."""
    return (v - v.mean()) / (v.std(ddof=1) + 1e-7)


def tiny_pair(classes: int = 4) -> tuple[TappedModel, TappedModel]:
    torch.manual_seed(0)
    return build_model("vgg8", classes, width=0.06), build_model("vgg11", classes, width=0.08).eval()


# ---- logit standardisation ------------------------------------------------------------------

def test_standardized_kd_is_kd_of_z_scored_logits():
    temp = 2.0
    pairs = zip(S, T, strict=True)
    expected = np.mean([kl(softmax(zscore(t) / temp), softmax(zscore(s) / temp)) for s, t in pairs]) * temp**2
    got = kd_loss(torch.tensor(S), torch.tensor(T), temp, standardized=True).item()
    assert got == pytest.approx(expected, rel=1e-5)
    z = standardize(torch.tensor(S)).numpy()
    assert np.allclose(z, [zscore(row) for row in S], atol=1e-6)


@pytest.mark.parametrize("shift, scale", [(5.0, 1.0), (-3.0, 1.0), (0.0, 7.0), (2.0, 0.25)])
def test_standardized_losses_ignore_a_shift_or_scale_of_either_logit_row(shift, scale):
    s, t, y = torch.tensor(S), torch.tensor(T), torch.tensor(Y)
    base = kd_loss(s, t, 2.0, standardized=True).item()
    assert kd_loss(s * scale + shift, t, 2.0, standardized=True).item() == pytest.approx(base, rel=1e-5)
    assert kd_loss(s, t * scale + shift, 2.0, standardized=True).item() == pytest.approx(base, rel=1e-5)
    # DKD's terms take already standardised logits from the distiller: check through the method itself
    student, teacher = tiny_pair()
    dkd = build_distiller("dkd", student, teacher, {"standardize": True})
    first = dkd.losses(s.float(), {}, TeacherOutputs(t.float(), {}), y, None, 30)
    moved = dkd.losses((s * scale + shift).float(), {}, TeacherOutputs((t * scale + shift).float(), {}), y, None, 30)
    for name in ("tckd", "nckd"):
        assert moved[name].item() == pytest.approx(first[name].item(), rel=1e-4)
    # without the switch the same shift-and-scale changes the loss (the invariance is the option's doing)
    if scale != 1.0:
        assert kd_loss(s * scale + shift, t, 2.0).item() != pytest.approx(kd_loss(s, t, 2.0).item(), rel=1e-3)


def test_standardized_dkd_is_dkd_of_z_scored_logits_with_the_papers_weights():
    student, teacher = tiny_pair()
    dkd = build_distiller("dkd", student, teacher, {"standardize": "true"})
    assert (dkd.options["alpha"], dkd.options["beta"], dkd.options["temperature"]) == (9.0, 81.0, 4.0)
    s, t, y = torch.tensor(S).float(), torch.tensor(T).float(), torch.tensor(Y)
    terms = dkd.losses(s, {}, TeacherOutputs(t, {}), y, None, 20)
    z_s, z_t = (torch.tensor(np.array([zscore(r) for r in rows])) for rows in (S, T))
    tckd, nckd = dkd_terms(z_s, z_t, y, 4.0)
    assert terms["tckd"].item() == pytest.approx(9.0 * tckd.item(), rel=1e-4)
    assert terms["nckd"].item() == pytest.approx(81.0 * nckd.item(), rel=1e-4)


def test_standardize_brings_the_papers_weight_and_temperature_unless_set():
    student, teacher = tiny_pair()
    plain = build_distiller("kd", student, teacher)
    assert (plain.options["kd_weight"], plain.options["temperature"], plain.options["standardize"]) == (0.9, 4.0, False)
    on = build_distiller("kd", student, teacher, {"standardize": 1.0})  # the CLI parses "1" as a number
    assert (on.options["kd_weight"], on.options["temperature"]) == (9.0, 2.0)
    chosen = build_distiller("kd", student, teacher, {"standardize": "yes", "temperature": 3.0})
    assert (chosen.options["kd_weight"], chosen.options["temperature"]) == (9.0, 3.0)
    assert build_distiller("kd", student, teacher, {"standardize": "false"}).options["standardize"] is False
    with pytest.raises(KdcamError, match="kd.standardize is a switch"):
        build_distiller("kd", student, teacher, {"standardize": "maybe"})


# ---- cat --------------------------------------------------------------------------------------

def test_cat_loss_is_mse_of_average_pooled_maps():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(1, 2, 4, 4)), rng.normal(size=(1, 2, 4, 4))

    def pool2(m: np.ndarray) -> np.ndarray:  # 4x4 -> 2x2 by averaging 2x2 blocks
        return m.reshape(m.shape[0], m.shape[1], 2, 2, 2, 2).mean(axis=(3, 5))

    expected = np.mean((pool2(s) - pool2(t)) ** 2)
    got = cat_loss(torch.tensor(s), torch.tensor(t), resolution=2, normalize=False).item()
    assert got == pytest.approx(expected, rel=1e-6)

    def unit(m: np.ndarray) -> np.ndarray:  # each map (per sample, per class) to unit L2 norm
        flat = m.reshape(m.shape[0], m.shape[1], -1)
        return flat / np.linalg.norm(flat, axis=2, keepdims=True)

    expected_norm = np.mean((unit(pool2(s)) - unit(pool2(t))) ** 2)
    got_norm = cat_loss(torch.tensor(s), torch.tensor(t), resolution=2, normalize=True).item()
    assert got_norm == pytest.approx(expected_norm, rel=1e-6)


def test_class_activation_maps_average_to_the_logits_minus_bias():
    student, _ = tiny_pair()
    student.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits, taps = student.forward_taps(x)
        head = linear_head(student, None)
        assert head is student.classifier
        cams = class_activation_maps(taps[student.default_cam_tap], head)
        features = taps[student.default_cam_tap]
        by_hand = (head.weight[None, :, :, None, None] * features[:, None]).sum(dim=2)
    assert torch.allclose(cams, by_hand, atol=1e-5)
    assert torch.allclose(cams.mean(dim=(2, 3)) + head.bias, logits, atol=1e-5)


def test_cat_transfers_the_chosen_share_of_classes_by_teacher_rank():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0], [5.0, 0.0, 1.0, -2.0]])
    assert pick_classes(logits, 1.0, "top") is None
    assert pick_classes(logits, 0.5, "top").tolist() == [[1, 3], [0, 2]]
    assert pick_classes(logits, 0.5, "bottom").tolist() == [[2, 0], [3, 1]]
    assert pick_classes(logits, 0.01, "top").tolist() == [[1], [0]]  # at least one class

    student, teacher = tiny_pair()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    half = build_distiller("cat", student, teacher, {"class_fraction": 0.5})
    logits_s, taps = student.forward_taps(x)
    t_logits, t_taps = half.teacher_outputs(x)
    cams_t = class_activation_maps(t_taps[half.teacher_tap], teacher.classifier)
    cams_s = class_activation_maps(taps[half.student_tap], student.classifier)
    keep = pick_classes(t_logits, 0.5, "top")
    rows = torch.arange(2)[:, None]
    expected = 4.5 * cat_loss(cams_s[rows, keep], cams_t[rows, keep], 2, False)
    got = half.losses(logits_s, taps, TeacherOutputs(t_logits, t_taps), y, None, 1)["cat"]
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_cat_defaults_are_the_reference_codes_and_bad_options_are_refused():
    assert catalogue.METHOD_DEFAULTS["cat"] == {"ce_weight": 1.0, "cat_weight": 4.5, "resolution": 2,
                                                "normalize": False, "class_fraction": 1.0, "class_pick": "top"}
    student, teacher = tiny_pair()
    for options, message in (({"class_fraction": 1.5}, "class_fraction"), ({"class_pick": "middle"}, "class_pick"),
                             ({"resolution": 0}, "resolution")):
        with pytest.raises(KdcamError, match=message):
            build_distiller("cat", student, teacher, options)


class _MlpHead(TappedModel):
    """A model whose head is not one linear layer on pooled features: no class activation maps."""

    default_cam_tap = "stage1"

    def __init__(self, classes: int = 4):
        super().__init__()
        self.num_classes = classes
        self.stage1 = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.fc1, self.fc2 = nn.Linear(6, 6), nn.Linear(6, classes)

    def body(self, x):
        return [("stage1", self.stage1)]

    def head(self, x):
        return self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3)))))


def test_cat_needs_a_linear_teacher_head_and_projects_a_student_without_one():
    student, teacher = tiny_pair()
    with pytest.raises(KdcamError, match="one linear layer"):
        build_distiller("cat", student, _MlpHead())
    projected = build_distiller("cat", _MlpHead(), teacher)
    assert projected.projection is not None and projected.projection.out_channels == 4
    assert "projection.weight" in projected.extras_state_dict()
    assert build_distiller("cat", student, teacher).extras_state_dict() == {}


# ---- xa ---------------------------------------------------------------------------------------

def test_explanation_loss_is_one_minus_cosine_per_image():
    s = np.array([[[1.0, 0.0], [2.0, 1.0]], [[0.0, 3.0], [1.0, 0.0]]])
    t = np.array([[[1.0, 1.0], [1.0, 1.0]], [[0.0, 1.0], [0.0, 0.0]]])
    cos = [float(a.ravel() @ b.ravel() / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(s, t, strict=True)]
    got = explanation_loss(torch.tensor(s), torch.tensor(t)).item()
    assert got == pytest.approx(np.mean([1 - c for c in cos]), rel=1e-6)


def test_xa_map_is_the_analysis_engines_gradcam():
    student, _ = tiny_pair()
    student.eval()
    torch.manual_seed(1)
    x, classes = torch.randn(5, 3, 32, 32), torch.tensor([0, 1, 2, 3, 1])
    reference = compute_cams(student, x, classes, "gradcam")
    logits, taps = student.forward_taps(x)
    raw = gradcam_on_graph(logits, taps[student.default_cam_tap], classes)
    assert torch.allclose(raw, reference.raw, atol=1e-5)
    maps, degenerate = postprocess(upsampled(raw, (32, 32)), (32, 32))  # ReLU'd and upsampled already: same maps
    assert torch.equal(degenerate, reference.degenerate)
    assert torch.allclose(maps, reference.maps, atol=1e-4)


def test_xa_aligns_to_the_teachers_gradcam_of_its_top_class():
    student, teacher = tiny_pair()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    xa = build_distiller("xa", student, teacher).train()
    logits, terms = xa(x, y, torch.arange(4), 1)
    assert set(terms) == {"ce", "kd", "xa"}
    with torch.no_grad():
        t_logits = teacher(x)
    t_maps = upsampled(compute_cams(teacher, x, t_logits.argmax(1), "gradcam").raw, (32, 32))
    s_logits, s_taps = student.forward_taps(x)
    s_maps = upsampled(gradcam_on_graph(s_logits, s_taps[student.default_cam_tap], t_logits.argmax(1)), (32, 32))
    assert terms["xa"].item() == pytest.approx(explanation_loss(s_maps, t_maps).item(), rel=1e-4)
    assert terms["kd"].item() == pytest.approx(kd_loss(s_logits, t_logits, 1.0).item(), rel=1e-4)
    label_only = build_distiller("xa", student, teacher, {"target": "label", "kd_weight": 0}).train()
    assert set(label_only(x, y, torch.arange(4), 1)[1]) == {"ce", "xa"}


def test_xa_trains_the_student_through_its_gradcam_and_never_the_teacher():
    student, teacher = tiny_pair()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    xa = build_distiller("xa", student, teacher).train()
    _, terms = xa(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.arange(4), 1)
    terms["xa"].backward()
    # the classifier shapes the student's map only through d score / d tap: a gradient here is the
    # double backward at work
    assert student.classifier.weight.grad is not None and student.classifier.weight.grad.abs().sum() > 0
    assert student.stage1[0].weight.grad is not None and student.stage1[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert not any(p is q for p in xa.trainable_parameters() for q in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # weights and BN statistics


def test_cat_trains_the_student_and_never_the_teacher():
    student, teacher = tiny_pair()
    cat = build_distiller("cat", student, teacher, {"normalize": True}).train()
    _, terms = cat(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.arange(4), 1)
    terms["cat"].backward()
    assert student.classifier.weight.grad.abs().sum() > 0 and student.stage1[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


# ---- the catalogue and the way back from an analysis -------------------------------------------

def test_catalogue_lists_the_new_methods_but_defaults_stay_the_original_seven():
    assert catalogue.KD_METHODS[-2:] == ("cat", "xa") and set(catalogue.METHOD_TITLES) == set(catalogue.KD_METHODS)
    assert catalogue.DEFAULT_METHODS == ("si", "ls", "kd", "dkd", "hints", "crd", "at")
    assert TrainSpec(workspace="w").methods == DemoSpec(workspace="w").methods == catalogue.DEFAULT_METHODS
    assert catalogue.ARCHITECTURES == tuple(architectures())
    assert catalogue.parse_methods("cat,xa") == ("cat", "xa")


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    ws = Workspace.open(tmp_path_factory.mktemp("where") / "ws").ensure()
    write_synthetic_analysis(ws, "synthetic", n=40, students=("kd-student", "at-student"), num_classes=4,
                             blank_student=True)
    return ws.root, "synthetic"


def test_a_student_that_looks_elsewhere_gets_a_cat_xa_spec_from_the_same_teacher(analysis):
    root, analysis_id = analysis
    results = load_results(root, analysis_id)
    student = results.pairs[0].student
    entry = next(m for m in results.models if m.name == student)
    spec = where_to_look_spec(results, student, str(root))
    assert spec.methods == ("cat", "xa") and spec.teacher == results.teacher.name
    assert spec.dataset == results.dataset.spec and spec.recipe == catalogue.default_recipe(spec.dataset)
    if entry.arch in catalogue.ARCHITECTURES:
        assert (spec.student, spec.width) == (entry.arch, entry.width)
    else:
        assert (spec.student, spec.width) == (student, None)
    with pytest.raises(KdcamError, match="no student 'nobody'"):
        where_to_look_spec(results, "nobody", str(root))

    words = shlex.split(train_command(spec))
    assert words[:4] == ["kdcam", "--workspace", str(root), "train"]
    assert words[words.index("--methods") + 1] == "cat,xa" and words[words.index("--teacher") + 1] == spec.teacher

    hints = where_to_look_hints(results, str(root))
    elsewhere = [p.student for p in results.pairs if looks_elsewhere(p)]
    assert [p.student for p, _ in hints] == elsewhere[:len(hints)] and bool(hints) == bool(elsewhere)
    assert all(p.band_score <= catalogue.BAND_NAMES.index("Acceptable") for p, _ in hints)


def test_analyze_prints_the_train_command_for_students_that_look_elsewhere(analysis, capsys):
    from engine.cli.analyze import print_where_to_look

    root, analysis_id = analysis
    results = load_results(root, analysis_id)
    print_where_to_look(results, str(root))
    out = capsys.readouterr().out
    hints = where_to_look_hints(results, str(root))
    assert hints, "the synthetic analysis has a student with blank maps (band Problematic)"
    assert "where to look:" in out and all(command in " ".join(out.split()) for _, command in hints)


def test_hints_name_only_the_where_to_look_methods_the_analysis_does_not_already_hold(analysis):
    # an analysis of cat and xa students whose band is Acceptable must not send the user to train them again
    root, analysis_id = analysis
    results = load_results(root, analysis_id)
    (pair, command), *_ = where_to_look_hints(results, str(root))
    assert "--methods cat,xa" in command
    flagged = next(m for m in results.models if m.name == pair.student)
    other = next(m for m in results.models if m.role != "teacher" and m.name != flagged.name)
    assert (other.arch, other.width) == (flagged.arch, flagged.width)

    def relabelled(methods: dict[str, str]) -> AnalysisResults:
        return dataclasses.replace(results, models=tuple(
            dataclasses.replace(m, method=methods.get(m.name, m.method)) for m in results.models))

    with_cat = relabelled({other.name: "cat+cat_weight0.045"})  # a variant counts as its method
    assert [words[words.index("--methods") + 1] for words in
            (shlex.split(c) for _, c in where_to_look_hints(with_cat, str(root)))] == ["xa"]
    assert where_to_look_hints(relabelled({other.name: "cat", flagged.name: "xa"}), str(root)) == []


def test_at_warm_up_ramps_the_reference_term_and_defaults_to_none():
    assert catalogue.METHOD_DEFAULTS["at"]["warmup_epochs"] == 0
    student, teacher = tiny_pair()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    logits, taps = student.forward_taps(x)
    reference = build_distiller("at", student, teacher)
    ramped = build_distiller("at", student, teacher, {"warmup_epochs": 4})
    out = reference.teacher_outputs(x)
    full = reference.losses(logits, taps, out, y, None, 1)["at"]
    assert ramped.losses(logits, taps, out, y, None, 1)["at"].item() == pytest.approx(full.item() / 4, rel=1e-6)
    assert ramped.losses(logits, taps, out, y, None, 9)["at"].item() == pytest.approx(full.item(), rel=1e-6)


async def test_leaderboard_t_queues_cat_and_xa_students_from_the_analysed_teacher(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from tests.test_tui import SIZE, wait_for
    from tests.test_tui_fixtures import DATASET, workspace_copy
    from tui.app import KdcamApp

    app = KdcamApp(workspace=str(workspace_copy(tmp_path / "ws")))
    submitted: list[object] = []
    app.submit = submitted.append  # type: ignore[method-assign]  # record the request; training is not the point
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#board", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("t")
        await wait_for(pilot, lambda: bool(submitted))
    (spec,) = submitted
    assert isinstance(spec, TrainSpec)
    assert (spec.teacher, spec.student, spec.width, spec.methods) == ("teacher", "vgg8", 0.125, ("cat", "xa"))
    assert spec.dataset == DATASET and spec.recipe == "demo"


def test_only_the_demo_recipe_changes_attention_transfer():
    from engine.train.recipes import RECIPES

    assert RECIPES["demo"].method_defaults["at"] == {"at_weight": 100.0}  # ARCHITECTURE.md: why
    assert all("at" not in RECIPES[name].method_defaults for name in ("paper", "quick"))
