"""Every map metric of DESIGN §6 on small maps whose values are worked out by hand."""

import math

import numpy as np
import pytest
import torch

from engine.analysis import metrics

T = torch.tensor([[[0.0, 1.0], [0.5, 0.5]]])
S = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])


def test_pearson_of_hand_computed_maps():
    # centred T = (-.5, .5, 0, 0), centred S = (.5, -.5, 0, 0): perfectly anti-correlated
    assert metrics.pearson(T, S).item() == pytest.approx(-1.0)
    assert metrics.pearson(T, T).item() == pytest.approx(1.0)
    a = torch.tensor([[[0.0, 0.2], [0.4, 1.0]]])
    b = torch.tensor([[[0.0, 0.4], [0.2, 1.0]]])
    expected = np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]
    assert metrics.pearson(a, b).item() == pytest.approx(expected, abs=1e-6)


def test_pearson_of_a_constant_map_is_undefined():
    assert math.isnan(metrics.pearson(torch.zeros(1, 2, 2), T).item())


def test_l2_similarity():
    # differences (-1, 1, 0, 0): mean square 0.5
    assert metrics.l2_similarity(T, S).item() == pytest.approx(1 - math.sqrt(0.5))
    assert metrics.l2_similarity(T, T).item() == pytest.approx(1.0)


def test_iou_uses_strict_threshold_and_is_one_for_two_empty_sets():
    a = torch.tensor([[[0.6, 0.9], [0.5, 0.0]]])  # {0, 1}: 0.5 itself is not above 0.5
    b = torch.tensor([[[0.7, 0.1], [0.9, 0.0]]])  # {0, 2}
    assert metrics.iou(a, b).item() == pytest.approx(1 / 3)
    assert metrics.iou(torch.full((1, 2, 2), 0.5), torch.zeros(1, 2, 2)).item() == 1.0
    assert metrics.iou(a, torch.zeros(1, 2, 2)).item() == 0.0


def test_kl_matches_the_definition():
    p = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])  # p = (.5, .5, 0, 0)
    q = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # q = (.5, 0, .5, 0)
    expected = 0.5 * math.log((0.5 + 1e-8) / (0.5 + 1e-8)) + 0.5 * math.log((0.5 + 1e-8) / 1e-8)
    assert metrics.kl(p, q).item() == pytest.approx(expected, rel=1e-5)
    assert metrics.kl(p, p).item() == pytest.approx(0.0, abs=1e-6)
    # the scale of a map does not matter, only its shape
    assert metrics.kl(p * 0.3, q * 0.7).item() == pytest.approx(expected, rel=1e-5)


def test_spearman_with_ties_uses_average_ranks():
    a = torch.tensor([[[0.0, 0.0], [0.5, 1.0]]])  # ranks 1.5 1.5 3 4
    b = torch.tensor([[[0.1, 0.3], [0.2, 0.9]]])  # ranks 1 3 2 4
    ra, rb = np.array([1.5, 1.5, 3, 4]), np.array([1, 3, 2, 4])
    assert metrics.average_ranks(a.reshape(1, -1)).flatten().tolist() == ra.tolist()
    assert metrics.spearman(a, b).item() == pytest.approx(np.corrcoef(ra, rb)[0, 1], abs=1e-6)
    # monotone transforms leave Spearman at 1
    assert metrics.spearman(b, b ** 3).item() == pytest.approx(1.0)


def test_peak_distance_in_pixels():
    a = torch.zeros(1, 5, 5)
    b = torch.zeros(1, 5, 5)
    a[0, 0, 0] = 1
    b[0, 3, 4] = 1
    assert metrics.peak_distance(a, b).item() == pytest.approx(5.0)
    assert metrics.peak_positions(b).tolist() == [[3, 4]]


def test_mask_metrics():
    maps = torch.tensor([[[0.0, 1.0], [0.5, 0.5]], [[1.0, 0.0], [0.0, 0.0]]])
    masks = torch.tensor([[[False, True], [True, False]], [[False, True], [True, True]]])
    assert metrics.pointing_game(maps, masks).tolist() == [1.0, 0.0]
    assert metrics.energy_in_mask(maps, masks).tolist() == pytest.approx([1.5 / 2.0, 0.0])


def test_metrics_are_batched_per_image():
    maps_t = torch.stack([T[0], S[0], T[0]])
    maps_s = torch.stack([S[0], S[0], T[0]])
    values = metrics.pair_metrics(maps_t, maps_s)
    assert set(values) == set(metrics.PAIR_METRICS)
    assert values["pearson"].tolist() == pytest.approx([-1.0, 1.0, 1.0])
    assert values["peak_distance"].tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_pair_output_statistics():
    teacher = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    student = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    labels = torch.tensor([0, 2])
    assert metrics.agreement(teacher, student).tolist() == [1.0, 0.0]
    assert metrics.correct(student, labels).tolist() == [1.0, 1.0]
    assert metrics.correct(teacher, labels).tolist() == [1.0, 0.0]
    p, q = torch.softmax(teacher, 1), torch.softmax(student, 1)
    expected = (p * (p / q).log()).sum(1)
    assert metrics.output_kl(teacher, student).tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    assert metrics.output_kl(teacher, teacher).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_batched_ranks_and_spearman_match_scipy_on_tied_maps():
    from scipy import stats

    generator = torch.Generator().manual_seed(0)
    a = (torch.rand(20, 8, 8, generator=generator) * 4).round() / 4  # heavy ties
    b = torch.rand(20, 8, 8, generator=generator)
    b[:, :3] = 0  # a block of zeros, as ReLU leaves in real maps
    ranks = metrics.average_ranks(a.reshape(20, -1)).numpy()
    assert np.array_equal(ranks, np.stack([stats.rankdata(row) for row in a.reshape(20, -1).numpy()]))
    expected = [stats.spearmanr(x, y).statistic for x, y in zip(a.reshape(20, -1).numpy(), b.reshape(20, -1).numpy(), strict=True)]
    assert metrics.spearman(a, b).numpy() == pytest.approx(expected, abs=1e-5)
