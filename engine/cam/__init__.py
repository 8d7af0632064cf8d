"""Class-activation maps, batched in torch on the model's device (DESIGN §5).

``compute_cams(model, images, targets, method, tap) -> CamBatch``; ``METHODS`` lists the
method names; ``resolve_targets(spec, ...)`` turns ``label``/``teacher``/``own``/
``class:K``/``cosine``/``norm`` into a ``Target``; ``postprocess`` is the shared
ReLU → upsample → min–max step.
"""

from engine.cam.compute import METHODS, CamBatch, compute_cams, resolve_tap
from engine.cam.postprocess import EPS, postprocess
from engine.cam.targets import (
    TARGET_SPECS,
    ClassTarget,
    CosineToReference,
    EmbeddingNorm,
    FixedClass,
    OwnPrediction,
    Target,
    resolve_targets,
)

__all__ = [
    "EPS", "METHODS", "TARGET_SPECS", "CamBatch", "ClassTarget", "CosineToReference", "EmbeddingNorm",
    "FixedClass", "OwnPrediction", "Target", "compute_cams", "postprocess", "resolve_tap", "resolve_targets",
]
