"""Interpretation bands at their exact edges, and the overall-band rule (DESIGN §6)."""

import math

import pytest

from engine.api.bands import band, band_score, overall_band, overall_score


@pytest.mark.parametrize("metric", ["pearson", "l2_similarity"])
@pytest.mark.parametrize(
    "value, expected",
    [(0.86, "Excellent"), (0.85, "Good"), (0.70, "Good"), (0.6999, "Acceptable"), (0.50, "Acceptable"),
     (0.4999, "Problematic"), (-1.0, "Problematic")],
)
def test_correlation_like_bands(metric, value, expected):
    assert band(metric, value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [(0.7501, "Excellent"), (0.75, "Good"), (0.60, "Good"), (0.5999, "Acceptable"), (0.40, "Acceptable"),
     (0.3999, "Problematic")],
)
def test_iou_bands(value, expected):
    assert band("iou", value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [(0.1499, "Excellent"), (0.15, "Good"), (0.30, "Good"), (0.3001, "Acceptable"), (0.60, "Acceptable"),
     (0.6001, "Problematic")],
)
def test_kl_bands_lower_is_better(value, expected):
    assert band("kl", value) == expected


def test_missing_mean_scores_zero_and_unbanded_metric_is_refused():
    assert band_score("pearson", None) == 0
    assert band_score("kl", math.nan) == 0
    with pytest.raises(KeyError):
        band_score("spearman", 0.9)


def test_overall_band_rounds_half_up():
    # scores 3, 3, 2, 2 -> 2.5 -> 3
    means = {"pearson": 0.9, "l2_similarity": 0.9, "iou": 0.7, "kl": 0.2}
    assert overall_score(means) == 3
    assert overall_band(means) == "Excellent"
    # scores 3, 2, 1, 1 -> 1.75 -> 2
    assert overall_band({"pearson": 0.9, "l2_similarity": 0.8, "iou": 0.5, "kl": 0.5}) == "Good"
    # scores 2, 1, 1, 1 -> 1.25 -> 1
    assert overall_band({"pearson": 0.8, "l2_similarity": 0.6, "iou": 0.5, "kl": 0.5}) == "Acceptable"
    # scores 1, 0, 0, 1 -> 0.5 -> 1 (half up, not banker's rounding to 0)
    assert overall_score({"pearson": 0.6, "l2_similarity": 0.1, "iou": 0.1, "kl": 0.5}) == 1
    # scores 0, 0, 0, 1 -> 0.25 -> 0
    assert overall_band({"pearson": 0.1, "l2_similarity": 0.1, "iou": 0.1, "kl": 0.5}) == "Problematic"
