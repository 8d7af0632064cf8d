"""Parameter-randomisation sanity check (Adebayo et al., 2018).

A map that explains the model must change when the model's weights are replaced by random
ones. We compute a model's maps and those of a freshly initialised copy (same architecture,
seeded) on a subset of images and report how alike they are: high similarity means the
method shows the image (edges, contrast), not what the model learned.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from engine.analysis import metrics
from engine.analysis.collect import cams_for
from engine.analysis.inputs import AnalysedModel
from engine.api.catalogue import SANITY_PASS_BELOW
from engine.checkpoints.building import fresh_copy

SANITY_METRICS = ("spearman", "pearson", "iou")


def randomised_copy(am: AnalysedModel, seed: int, device: torch.device) -> AnalysedModel:
    """``am`` with every weight re-initialised (deterministically for ``seed``)."""
    with torch.random.fork_rng(devices=[]):  # weights are initialised on the CPU; leave global RNGs as they were
        torch.default_generator.manual_seed(seed)
        model = fresh_copy(am.model, am.meta)
    return dataclasses.replace(am, model=model.to(device).eval())


def sanity_values(am: AnalysedModel, images_u8: np.ndarray, classes: np.ndarray, method: str, tap: str | None,
                  seed: int, device: torch.device, batch_size: int) -> tuple[dict[str, np.ndarray], Tensor]:
    """Per-image similarity of trained vs randomised maps (NaN where either is degenerate),
    and the randomised maps themselves."""
    trained, trained_degenerate = cams_for(am, images_u8, classes, method, device, batch_size, tap)
    random_model = randomised_copy(am, seed, device)
    randomised, random_degenerate = cams_for(random_model, images_u8, classes, method, device, batch_size, tap)
    invalid = (trained_degenerate | random_degenerate).cpu().numpy()
    values = {
        "spearman": metrics.spearman(trained, randomised),
        "pearson": metrics.pearson(trained, randomised),
        "iou": metrics.iou(trained, randomised),
    }
    return {k: np.where(invalid, np.nan, v.cpu().numpy()) for k, v in values.items()}, randomised


def passed(mean_spearman: float | None) -> bool | None:
    """None when no image had two usable maps."""
    return None if mean_spearman is None else bool(abs(mean_spearman) < SANITY_PASS_BELOW)

