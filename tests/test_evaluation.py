"""``kdcam eval``'s calibration figure, checked against a hand computation."""

from __future__ import annotations

import pytest
import torch

from engine.evaluation import expected_calibration_error


def test_ece_weighs_each_bins_gap_by_its_share_of_images() -> None:
    # bin (0.8, 0.867]: confidences 0.85, 0.85, accuracy 1/2 -> gap 0.35, weight 2/4
    # bin (0.933, 1]:  confidences 0.95, 1.0, accuracy 1     -> gap 0.025, weight 2/4
    confidence = torch.tensor([0.85, 0.85, 0.95, 1.0])
    correct = torch.tensor([True, False, True, True])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.35 + 0.5 * 0.025)


def test_a_perfectly_calibrated_model_has_zero_ece() -> None:
    confidence = torch.full((10,), 0.7)
    correct = torch.tensor([True] * 7 + [False] * 3)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0, abs=1e-6)  # float32 confidences
