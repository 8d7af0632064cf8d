"""Every distillation loss against an independent, written-out computation on fixed tensors,
and gradients flowing to the student and the method's extras but never to the teacher."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.distill import METHODS, TrainingSet, build_distiller
from engine.distill.attention import at_loss, attention_map
from engine.distill.base import TeacherOutputs
from engine.distill.crd import ContrastMemory, infonce_loss, nce_loss
from engine.distill.dkd import dkd_terms
from engine.distill.hints import HintRegressor
from engine.distill.kd import kd_loss
from engine.errors import KdcamError
from engine.models import build_model

S = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, -0.5]])
T = np.array([[1.0, 1.5, -0.5, 0.2], [-1.0, 0.0, 2.0, 1.0]])
Y = np.array([1, 2])


def softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)))


def test_kd_is_t_squared_times_kl_of_softened_distributions():
    for temp in (1.0, 4.0):
        expected = np.mean([kl(softmax(t / temp), softmax(s / temp)) for s, t in zip(S, T, strict=True)]) * temp**2
        got = kd_loss(torch.tensor(S), torch.tensor(T), temp).item()
        assert got == pytest.approx(expected, rel=1e-5)


def test_dkd_splits_gold_class_from_the_rest():
    temp = 4.0
    tckd, nckd = [], []
    for s, t, y in zip(S, T, Y, strict=True):
        ps, pt = softmax(s / temp), softmax(t / temp)
        tckd.append(kl(np.array([pt[y], 1 - pt[y]]), np.array([ps[y], 1 - ps[y]])))
        others = [c for c in range(len(s)) if c != y]  # the gold class is left out entirely
        nckd.append(kl(softmax(t[others] / temp), softmax(s[others] / temp)))
    got_t, got_n = dkd_terms(torch.tensor(S), torch.tensor(T), torch.tensor(Y), temp)
    assert got_t.item() == pytest.approx(np.mean(tckd) * temp**2, rel=1e-4)
    assert got_n.item() == pytest.approx(np.mean(nckd) * temp**2, rel=1e-4)


def test_dkd_warms_up_linearly_over_twenty_epochs():
    student, teacher = build_model("vgg8", 4, width=0.06), build_model("vgg8", 4, width=0.06)
    dkd = build_distiller("dkd", student, teacher)
    logits = torch.tensor(S, dtype=torch.float32)
    teacher_out = TeacherOutputs(torch.tensor(T, dtype=torch.float32), {})
    full = dkd.losses(logits, {}, teacher_out, torch.tensor(Y), None, 20)
    half = dkd.losses(logits, {}, teacher_out, torch.tensor(Y), None, 10)
    later = dkd.losses(logits, {}, teacher_out, torch.tensor(Y), None, 50)
    assert half["nckd"].item() == pytest.approx(full["nckd"].item() / 2, rel=1e-5)
    assert later["tckd"].item() == pytest.approx(full["tckd"].item(), rel=1e-6)


def test_kd_default_weights_are_point_one_ce_and_point_nine_kd():
    kd = build_distiller("kd", build_model("vgg8", 4, width=0.06), build_model("vgg8", 4, width=0.06))
    logits, target = torch.tensor(S, dtype=torch.float32), torch.tensor(T, dtype=torch.float32)
    terms = kd.losses(logits, {}, TeacherOutputs(target, {}), torch.tensor(Y), None, 1)
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor(Y)).item()
    assert terms["ce"].item() == pytest.approx(0.1 * ce, rel=1e-6)
    assert terms["kd"].item() == pytest.approx(0.9 * kd_loss(logits, target, 4.0).item(), rel=1e-6)


def test_options_override_defaults_and_bad_ones_are_refused():
    student, teacher = build_model("vgg8", 4, width=0.06), build_model("vgg8", 4, width=0.06)
    assert build_distiller("kd", student, teacher, {"temperature": 2}).options["temperature"] == 2.0
    with pytest.raises(KdcamError, match="no option 'temp'"):
        build_distiller("kd", student, teacher, {"temp": 2})
    with pytest.raises(KdcamError, match="finite"):
        build_distiller("kd", student, teacher, {"temperature": float("nan")})
    with pytest.raises(KdcamError, match="unknown method 'fitnet'"):
        build_distiller("fitnet", student, teacher)


def test_hint_regressor_maps_student_tap_onto_teacher_tap_shape():
    assert HintRegressor((16, 16, 16), (32, 16, 16))(torch.randn(2, 16, 16, 16)).shape == (2, 32, 16, 16)
    assert HintRegressor((16, 16, 16), (32, 8, 8))(torch.randn(2, 16, 16, 16)).shape == (2, 32, 8, 8)
    layers = [type(m).__name__ for m in HintRegressor((8, 4, 4), (8, 4, 4)).net]
    assert layers == ["Conv2d", "BatchNorm2d", "ReLU"]


def test_hints_refuses_a_missing_tap_before_training():
    student, teacher = build_model("vgg8", 4, width=0.06), build_model("vgg8", 4, width=0.06)
    with pytest.raises(KdcamError, match="no tap 'stage9'.*stage1"):
        build_distiller("hints", student, teacher, {"tap": "stage9"})


def test_hints_loss_is_hundred_times_mse_of_regressed_stage2():
    student, teacher = build_model("vgg8", 4, width=0.06), build_model("vgg11", 4, width=0.12)
    hints = build_distiller("hints", student, teacher).eval()
    x = torch.randn(3, 3, 32, 32)
    _, s_taps = student.forward_taps(x)
    _, t_taps = teacher.forward_taps(x)
    mapped = hints.regressor(s_taps["stage2"])
    expected = 100 * ((mapped - t_taps["stage2"]) ** 2).sum() / mapped.numel()
    got = hints.losses(torch.zeros(3, 4), s_taps, TeacherOutputs(torch.zeros(3, 4), t_taps),
                       torch.zeros(3, dtype=torch.long), None, 1)
    assert got["hint"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_attention_map_is_unit_norm_mean_of_squares():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # 1 image, 2 channels, 1x2
    raw = np.array([(1 + 9) / 2, (4 + 0) / 2])
    assert attention_map(f)[0].numpy() == pytest.approx(raw / np.linalg.norm(raw))
    g = torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]]]])
    diff = raw / np.linalg.norm(raw) - np.array([0.0, 1.0])
    assert at_loss([f, f], [g, g]).item() == pytest.approx(2 * np.mean(diff**2), rel=1e-6)
    assert at_loss([f], [3 * f]).item() == pytest.approx(0.0, abs=1e-7)  # scale-invariant


def test_nce_matches_a_hand_computed_case():
    scores = torch.tensor([[0.5, 0.1, 0.2], [0.3, 0.4, 0.05]])
    n, k = 10, 2
    pn = k / n
    expected = 0.0
    for row in scores.tolist():
        expected -= math.log(row[0] / (row[0] + pn + 1e-7))
        expected -= sum(math.log(pn / (x + pn + 1e-7)) for x in row[1:])
    assert nce_loss(scores, n).item() == pytest.approx(expected / 2, rel=1e-6)


def test_infonce_prefers_matching_pairs():
    e = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    assert infonce_loss(e, e, 0.07).item() < infonce_loss(e, e.roll(1, 0), 0.07).item()


def test_memory_bank_negatives_come_from_other_classes_and_update_with_momentum():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    memory = ContrastMemory(4, labels, num_negatives=50, temperature=0.07, momentum=0.5)
    anchors = torch.tensor([0, 3, 5])
    negatives = memory.sample_negatives(anchors)
    assert negatives.shape == (3, 50)
    assert not (labels[negatives] == labels[anchors].unsqueeze(1)).any()
    assert set(negatives[2].tolist()) <= {0, 1, 2, 3}
    before = memory.memory_student[anchors].clone()
    emb = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    scores_s, _ = memory(emb, emb, anchors)
    assert scores_s.shape == (3, 51)
    expected = torch.nn.functional.normalize(0.5 * before + 0.5 * emb, dim=1)
    assert torch.allclose(memory.memory_student[anchors], expected, atol=1e-6)
    assert memory.z_student.item() > 0  # estimated once, then fixed


def test_memory_scores_are_exp_of_dot_with_the_other_views_memory_over_z():
    torch.manual_seed(1)
    labels = torch.tensor([0, 1, 0, 1, 2])
    memory = ContrastMemory(3, labels, num_negatives=4, temperature=0.5, momentum=0.5)
    teacher_bank = memory.memory_teacher.clone()
    anchors = torch.tensor([1, 4])
    s_emb = torch.nn.functional.normalize(torch.randn(2, 3), dim=1)
    torch.manual_seed(7)
    negatives = memory.sample_negatives(anchors)
    torch.manual_seed(7)
    scores, _ = memory(s_emb, s_emb, anchors)
    z = memory.z_student.item()
    for b, anchor in enumerate(anchors.tolist()):
        for j, slot in enumerate([anchor] + negatives[b].tolist()):
            expected = math.exp(float(teacher_bank[slot] @ s_emb[b]) / 0.5) / z
            assert scores[b, j].item() == pytest.approx(expected, rel=1e-5)


def test_teacher_gets_no_gradient_and_student_and_extras_do():
    torch.manual_seed(0)
    training_set = TrainingSet(32, torch.arange(32) % 4)
    x, y, idx = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
    for method in METHODS:
        student, teacher = build_model("vgg8", 4, width=0.06), build_model("vgg11", 4, width=0.08)
        options = {"num_negatives": 8} if method == "crd" else {}
        distiller = build_distiller(method, student, teacher, options, training_set).train()
        assert distiller.teacher is None or not distiller.teacher.training
        _, terms = distiller(x, y, idx, epoch=5)
        sum(terms.values()).backward()
        assert all(p.grad is None for p in teacher.parameters()), method
        trainable = list(distiller.trainable_parameters())
        assert not any(p is q for p in trainable for q in teacher.parameters())
        assert all(p.grad is not None for p in student.parameters()), method
        assert all(p.grad is not None for p in trainable), method


def test_class_count_mismatch_is_refused():
    with pytest.raises(KdcamError, match="10 classes but the student has 4"):
        build_distiller("kd", build_model("vgg8", 4, width=0.06), build_model("vgg8", 10, width=0.06))


def test_attention_transfer_defaults_to_the_shared_taps_after_the_first():
    at = build_distiller("at", build_model("vgg8", 4, width=0.06), build_model("vgg11", 4, width=0.06))
    assert at.taps == ["stage2", "stage3", "stage4", "stage5"]
    chosen = build_distiller("at", build_model("vgg8", 4, width=0.06), build_model("vgg11", 4, width=0.06),
                             {"taps": "stage3,stage4"})
    assert chosen.taps == ["stage3", "stage4"]
