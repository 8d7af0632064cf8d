"""torchvision's ImageNet classifiers by name (``tv:NAME``): files in torchvision's key format
import with the architecture recognised, and ResNet-18 and ViT-B/16 are analysed at 224 px
on an image folder preprocessed as torchvision evaluates (resize 256, centre crop 224).
Nothing downloads weights: every model here is randomly initialised."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import models

from engine.analysis.job import run_analysis_job
from engine.api.specs import AnalyzeSpec, ImportSpec
from engine.api.workspace import Workspace
from engine.cam import compute_cams, postprocess
from engine.checkpoints.importer import import_checkpoint
from engine.checkpoints.infer import infer_architecture
from engine.errors import KdcamError
from engine.jobs import JobContext
from engine.models import build_model
from engine.models.torchvision_models import NAMES

DATASET_OPTIONS = "?resize=256&size=224"


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_key_format_is_recognised(name: str) -> None:
    with torch.device("meta"):
        reference = models.get_model(name, weights=None, num_classes=37).state_dict()
        ours = build_model(f"tv:{name}", 37).state_dict()
    assert [(k, v.shape) for k, v in ours.items()] == [(k, v.shape) for k, v in reference.items()]
    inferred = infer_architecture(reference, f"{name}.pth")
    assert (inferred.arch, inferred.num_classes, inferred.width) == (f"tv:{name}", 37, 1.0)


def test_torchvision_models_take_no_width_multiplier() -> None:
    with pytest.raises(KdcamError, match="no width multiplier"):
        build_model("tv:resnet18", 10, width=0.5)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes, one test image each, of sizes that are neither square nor 224 px."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, sizes in (("train", [(64, 48), (40, 56)]), ("test", [(300, 260), (250, 330)])):
        for label, (width, height) in zip(("cat", "dog"), sizes, strict=True):
            (root / split / label).mkdir(parents=True)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / label / "0.png")
    return root


def test_resnet18_and_vit_b_16_are_analysed_at_224_px(folder: Path, tmp_path: Path) -> None:
    workspace = Workspace.open(tmp_path / "ws").ensure()
    dataset = f"imagefolder:{folder}{DATASET_OPTIONS}"
    torch.manual_seed(0)
    for name in ("resnet18", "vit_b_16"):  # as torchvision saves them: torch.save(model.state_dict())
        torch.save(models.get_model(name, weights=None, num_classes=2).state_dict(), tmp_path / f"{name}.pth")
        meta = import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / f"{name}.pth"), dataset=dataset))
        assert (meta.arch, meta.num_classes, meta.input_size, meta.resize) == (f"tv:{name}", 2, 224, 256)
        (tmp_path / f"{name}.pth").unlink()
    spec = AnalyzeSpec(str(workspace.root), teacher="resnet18", students=("vit_b_16",), dataset=dataset,
                       batch_size=2, device="cpu", name="tv", check_images=1, deletion_steps=1, resamples=50,
                       worst_per_class=1)
    run_analysis_job(spec, JobContext("test", lambda event: None, threading.Event()))
    results = json.loads((workspace.analyses / "tv" / "results.json").read_text())
    taps = [(m["name"], m["tap"], m["accuracy"]["n"]) for m in results["models"]]
    assert taps == [("resnet18", "layer4", 2), ("vit_b_16", "encoder.layers.encoder_layer_11.ln_1", 2)]


def test_vit_cam_over_the_token_grid_equals_pytorch_grad_cam() -> None:
    """pytorch-grad-cam's recipe for ViTs: hook the last block's first norm, drop the class
    token and lay the 196 patch tokens out as a 14 x 14 map (its ``reshape_transform``)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(1)
    model = build_model("tv:vit_b_16", 3).eval()
    images = torch.randn(1, 3, 224, 224)
    ours = compute_cams(model, images, [2], method="gradcam")

    def reshape_transform(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[:, 1:, :].reshape(tensor.size(0), 14, 14, tensor.size(2)).permute(0, 3, 1, 2)

    captured = []
    with GradCAM(model=model, target_layers=[model.tap_module(model.default_cam_tap)],
                 reshape_transform=reshape_transform) as cam:
        original = cam.get_cam_image
        cam.get_cam_image = lambda *args, **kwargs: captured.append(original(*args, **kwargs)) or captured[-1]
        cam(input_tensor=images, targets=[ClassifierOutputTarget(2)])
    expected, _ = postprocess(torch.from_numpy(captured[0]), (224, 224))
    assert ours.raw.shape == (1, 14, 14)
    assert (ours.maps - expected).abs().max().item() <= 1e-4


def test_imagefolder_resize_scales_the_shorter_side_then_crops_the_centre(tmp_path: Path) -> None:
    from engine.data import load_split

    pixels = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high: red left half, blue right half
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    for split in ("train", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.fromarray(pixels).save(tmp_path / split / "a" / "0.png")
    image = load_split(f"imagefolder:{tmp_path}?resize=20&size=16", "test").images[0]
    assert image.shape == (16, 16, 3)  # columns 12..27 of the 40 x 20 image, rows 2..17
    assert (image[:, :7, 0] == 255).all() and (image[:, 9:, 2] == 255).all()
    with pytest.raises(KdcamError, match="resize=8 must be at least"):
        load_split(f"imagefolder:{tmp_path}?resize=8&size=16", "test")
