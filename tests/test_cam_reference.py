"""Every CAM method against pytorch-grad-cam 1.5.7 on the same model, images and targets.

pytorch-grad-cam scales and resizes its maps its own way (cv2, scale-then-resize), so we
take its *raw* per-layer map (``get_cam_image``, no smoothing) and apply our DESIGN §5
post-processing to it: the comparison is then between the methods themselves.
"""

from __future__ import annotations

import pytest
import torch
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from engine.cam import compute_cams, postprocess
from tests.test_cam_support import batch, reference_raw, trained_model

REFERENCE = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "hirescam": HiResCAM,
    "layercam": LayerCAM,
    "eigencam": EigenCAM,
    "scorecam": ScoreCAM,
}

CASES = [("vgg8", 0.25, "stage5"), ("vgg8", 0.25, "stage3"), ("resnet20", 0.25, "layer3"),
         ("attention_cnn", 0.25, "attended")]


@pytest.fixture(scope="module")
def models():
    return {(arch, width): trained_model(arch, width) for arch, width, _ in CASES}


@pytest.mark.parametrize("method", list(REFERENCE))
@pytest.mark.parametrize("arch,width,tap", CASES)
def test_maps_match_pytorch_grad_cam(models, method, arch, width, tap):
    model = models[(arch, width)]
    images, _ = batch(4)
    with torch.no_grad():  # the predicted class: its evidence is positive, so maps are informative
        labels = model(images).argmax(dim=1)
    ours = compute_cams(model, images, labels, method=method, tap=tap)
    raw = reference_raw(REFERENCE[method], model, tap, images, [ClassifierOutputTarget(int(c)) for c in labels])
    expected, expected_degenerate = postprocess(raw, (32, 32))
    assert not expected_degenerate.all(), "the test model should give informative maps"
    per_image = (ours.maps - expected).abs().amax(dim=(1, 2))
    if method == "eigencam":  # SVD's sign is arbitrary in the reference: compare with either sign
        flipped, _ = postprocess(-raw, (32, 32))
        per_image = torch.minimum(per_image, (ours.maps - flipped).abs().amax(dim=(1, 2)))
        assert not ours.degenerate.any()
    else:
        assert torch.equal(ours.degenerate, expected_degenerate)
    assert per_image.max().item() <= 1e-4
