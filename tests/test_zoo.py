"""The KD zoo imports in the key layouts its public reference code publishes.

For every zoo architecture a small trained-like model is written with exactly the tensor
names of the code base that publishes it (RepDistiller / mdistiller, akamaster, pytorch-cifar),
in the containers those scripts save, and must import with the architecture inferred and
give the very logits of the model it came from. Expected key lists taken from the
reference code pin the layouts themselves; refusals must say why the closest candidate
failed and what to try.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from engine.api.specs import ImportSpec
from engine.api.workspace import Workspace
from engine.checkpoints import CheckpointStore
from engine.checkpoints.importer import import_checkpoint
from engine.errors import KdcamError
from engine.models import TappedModel, architectures, build_model
from engine.models.resnet import ResNet, ZeroPadShortcut

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))

_STEM = [(r"^stem\.0\.", "conv1."), (r"^stem\.1\.", "bn1.")]
#: kdcam module names -> the names the publishing code base uses
REFERENCE_NAMES: dict[str, list[tuple[str, str]]] = {
    # RepDistiller / mdistiller models/resnet.py: conv1/bn1 stem, downsample, fc
    "repdistiller resnet": [*_STEM, (r"\.shortcut\.", ".downsample.")],
    # akamaster pytorch_resnet_cifar10 resnet.py (option A): conv1/bn1 stem, linear
    "akamaster resnet": [*_STEM, (r"^fc\.", "linear.")],
    # RepDistiller resnetv2.py / pytorch-cifar: conv1/bn1 stem, shortcut, linear
    "resnetv2": [*_STEM, (r"^fc\.", "linear.")],
    # RepDistiller / mdistiller vgg.py: block0..block4
    "repdistiller vgg": [(r"^stage(\d)", "block{}")],
    # wrn.py, mobilenetv2.py, ShuffleNetv1/v2.py: kdcam uses their names as they are
    "native": [],
}


def layout_of(arch: str) -> str:
    if arch.startswith("vgg"):
        return "repdistiller vgg"
    if re.fullmatch(r"resnet\d+a", arch):
        return "akamaster resnet"
    if arch in ("resnet18", "resnet34", "resnet50"):
        return "resnetv2"
    if arch.startswith("resnet"):
        return "repdistiller resnet"
    return "native"


def to_reference(state: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in REFERENCE_NAMES[layout]:
            if "{}" in replacement:
                key = re.sub(pattern, lambda m, r=replacement: r.format(int(m.group(1)) - 1), key)
            else:
                key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def trained_like(arch: str, width: float, classes: int = 10) -> TappedModel:
    """Non-trivial BN statistics, so any wrong mapping would change the logits."""
    torch.manual_seed(5)
    model = build_model(arch, classes, width)
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 32, 32))
    return model.eval()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


# ---- the file shapes the reference scripts write -----------------------------------------------

def _bare_zip(state: dict, path: Path) -> None:
    torch.save(state, path)


def _data_parallel_legacy(state: dict, path: Path) -> None:
    torch.save({f"module.{k}": v for k, v in state.items()}, path, _use_new_zipfile_serialization=False)


def _repdistiller_container(state: dict, path: Path) -> None:  # train_teacher.py: {'epoch', 'model', 'accuracy'}
    torch.save({"epoch": 240, "model": state, "accuracy": torch.tensor(75.5)}, path)


def _akamaster_container(state: dict, path: Path) -> None:  # trainer.py: DataParallel, {'state_dict', 'best_prec1'}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "best_prec1": 91.73}, path,
               _use_new_zipfile_serialization=False)


WRITERS: list[tuple[str, Callable[[dict, Path], None]]] = [
    ("bare.pt", _bare_zip), ("parallel.pth", _data_parallel_legacy),
    ("ckpt_epoch_240.pth", _repdistiller_container), ("model.th", _akamaster_container),
]
ZOO = [a for a in architectures() if a != "attention_cnn"]
WIDTHS = {"resnet50": 0.125, "resnet32x4": 0.125, "resnet34": 0.125, "resnet18": 0.125}


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws").ensure()


def import_file(workspace: Workspace, path: Path, **kwargs) -> tuple[TappedModel, object]:
    meta = import_checkpoint(ImportSpec(str(workspace.root), str(path), **kwargs))
    return CheckpointStore(workspace.checkpoints).load(meta.name)


@pytest.mark.parametrize("arch", ZOO)
def test_every_zoo_architecture_imports_from_its_reference_layout(arch: str, workspace, tmp_path) -> None:
    filename, writer = WRITERS[ZOO.index(arch) % len(WRITERS)]  # every file shape, spread over the zoo
    width = WIDTHS.get(arch, 0.25)
    original = trained_like(arch, width)
    foreign = to_reference(original.state_dict(), layout_of(arch))
    writer(foreign, tmp_path / filename)
    model, meta = import_file(workspace, tmp_path / filename)
    assert (meta.arch, meta.width, meta.num_classes) == (arch, width, 10)
    assert torch.equal(logits(model), logits(original))


@pytest.mark.parametrize(("filename", "writer"), WRITERS, ids=[name for name, _ in WRITERS])
def test_each_file_shape_of_an_option_a_resnet(filename: str, writer, workspace, tmp_path) -> None:
    original = trained_like("resnet20a", 0.5)
    writer(to_reference(original.state_dict(), "akamaster resnet"), tmp_path / filename)
    model, meta = import_file(workspace, tmp_path / filename)
    assert meta.arch == "resnet20a"
    assert torch.equal(logits(model), logits(original))


def test_saved_accuracy_and_epoch_become_metadata(workspace, tmp_path) -> None:
    state = to_reference(trained_like("resnet8a", 0.25).state_dict(), "akamaster resnet")
    _akamaster_container(state, tmp_path / "resnet8a.th")
    _, meta = import_file(workspace, tmp_path / "resnet8a.th")
    assert meta.accuracy == pytest.approx(0.9173)
    _repdistiller_container(state, tmp_path / "teacher.pth")
    _, meta = import_file(workspace, tmp_path / "teacher.pth")
    assert (meta.accuracy, meta.epochs) == (pytest.approx(0.755), 240)


def test_akamaster_compressible_names_are_understood(workspace, tmp_path) -> None:
    """Later versions of akamaster's resnet.py call the convolutions compressible_conv1 etc."""
    original = trained_like("resnet32a", 0.25)
    foreign = {re.sub(r"(^|\.)(conv\d|linear)\.", r"\1compressible_\2.", k): v
               for k, v in to_reference(original.state_dict(), "akamaster resnet").items()}
    assert "compressible_conv1.weight" in foreign and "layer1.0.compressible_conv2.weight" in foreign
    torch.save(foreign, tmp_path / "r32.th")
    model, meta = import_file(workspace, tmp_path / "r32.th")
    assert meta.arch == "resnet32a" and torch.equal(logits(model), logits(original))


# ---- the layouts themselves, from the reference code ---------------------------------------------

#: (arch, {reference tensor name: shape at width 1 and 100 classes}) read off the reference code
REFERENCE_TENSORS: list[tuple[str, dict[str, tuple[int, ...]]]] = [
    ("resnet20a", {"conv1.weight": (16, 3, 3, 3), "layer1.0.conv1.weight": (16, 16, 3, 3),
                   "layer2.0.conv1.weight": (32, 16, 3, 3), "layer3.2.bn2.num_batches_tracked": (),
                   "linear.weight": (100, 64)}),
    ("resnet8x4", {"conv1.weight": (32, 3, 3, 3), "layer1.0.downsample.0.weight": (64, 32, 1, 1),
                   "layer3.0.downsample.1.running_var": (256,), "fc.weight": (100, 256)}),
    ("resnet32x4", {"layer1.4.conv2.weight": (64, 64, 3, 3), "layer3.0.conv1.weight": (256, 128, 3, 3)}),
    ("resnet56", {"layer2.0.downsample.0.weight": (32, 16, 1, 1), "layer3.8.bn2.bias": (64,)}),
    ("resnet50", {"conv1.weight": (64, 3, 3, 3), "layer1.0.shortcut.0.weight": (256, 64, 1, 1),
                  "layer4.2.conv3.weight": (2048, 512, 1, 1), "linear.weight": (100, 2048)}),
    ("wrn_40_2", {"conv1.weight": (16, 3, 3, 3), "block1.layer.0.bn1.weight": (16,),
                  "block1.layer.0.convShortcut.weight": (32, 16, 1, 1), "block3.layer.5.conv2.weight": (128, 128, 3, 3),
                  "bn1.running_mean": (128,), "fc.weight": (100, 128)}),
    ("wrn_16_1", {"block1.layer.1.conv1.weight": (16, 16, 3, 3), "block2.layer.0.convShortcut.weight": (32, 16, 1, 1)}),
    ("mobilenetv2", {"conv1.0.weight": (16, 3, 3, 3), "blocks.0.0.conv.0.weight": (16, 16, 1, 1),
                     "blocks.0.0.conv.3.weight": (16, 1, 3, 3), "blocks.1.0.conv.0.weight": (48, 8, 1, 1),
                     "blocks.6.0.conv.7.running_var": (160,), "conv2.0.weight": (1280, 160, 1, 1),
                     "classifier.0.weight": (100, 1280)}),
    ("shufflenetv1", {"conv1.weight": (24, 3, 1, 1), "layer1.0.conv1.weight": (54, 24, 1, 1),
                      "layer1.0.conv2.weight": (54, 1, 3, 3), "layer1.0.conv3.weight": (216, 18, 1, 1),
                      "layer1.1.conv1.weight": (60, 80, 1, 1), "layer2.0.conv3.weight": (240, 20, 1, 1),
                      "layer3.3.bn3.weight": (960,), "linear.weight": (100, 960)}),
    ("shufflenetv2", {"conv1.weight": (24, 3, 1, 1), "layer1.0.conv1.weight": (24, 1, 3, 3),
                      "layer1.0.conv2.weight": (58, 24, 1, 1), "layer1.0.conv4.weight": (58, 1, 3, 3),
                      "layer1.1.conv1.weight": (58, 58, 1, 1), "layer2.7.bn3.weight": (116,),
                      "conv2.weight": (1024, 464, 1, 1), "linear.weight": (100, 1024)}),
    ("vgg13", {"block0.0.weight": (64, 3, 3, 3), "block0.3.weight": (64, 64, 3, 3), "block4.4.running_var": (512,),
               "classifier.weight": (100, 512)}),
]


@pytest.mark.parametrize(("arch", "expected"), REFERENCE_TENSORS, ids=[a for a, _ in REFERENCE_TENSORS])
def test_reference_tensor_names_and_shapes(arch: str, expected: dict[str, tuple[int, ...]]) -> None:
    with torch.device("meta"):
        state = to_reference(build_model(arch, 100).state_dict(), layout_of(arch))
    assert {k: tuple(state[k].shape) for k in expected if k in state} == expected


def test_option_a_has_no_shortcut_tensors_and_pads_the_new_channels_with_zeros() -> None:
    with torch.device("meta"):
        keys = list(build_model("resnet110a", 10).state_dict())
    assert not any("shortcut" in k or "downsample" in k for k in keys)
    x = torch.randn(1, 16, 8, 8)
    out = ZeroPadShortcut(16, 32, 2)(x)
    assert out.shape == (1, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])  # akamaster: planes // 4 zero channels on each side
    assert not out[:, :8].any() and not out[:, 24:].any()


# ---- refusals that teach -------------------------------------------------------------------------

def _refusal(workspace: Workspace, path: Path, **kwargs) -> str:
    with pytest.raises(KdcamError) as err:
        import_checkpoint(ImportSpec(str(workspace.root), str(path), **kwargs))
    return str(err.value)


def test_zero_padding_file_forced_onto_a_conv_shortcut_resnet_says_what_to_try(workspace, tmp_path) -> None:
    torch.save(to_reference(trained_like("resnet20a", 0.25).state_dict(), "akamaster resnet"), tmp_path / "a.th")
    message = _refusal(workspace, tmp_path / "a.th", arch="resnet20")
    assert "zero-padding (option A) shortcuts: try --arch resnet20a" in message
    assert "These tensors fit resnet20a (width 0.25, 10 classes)" in message


def test_conv_shortcut_file_forced_onto_option_a_says_what_to_try(workspace, tmp_path) -> None:
    torch.save(trained_like("resnet32", 0.25).state_dict(), tmp_path / "b.pt")
    message = _refusal(workspace, tmp_path / "b.pt", arch="resnet32a")
    assert "1x1-convolution (option B) shortcuts where resnet32a zero-pads: try --arch resnet32" in message


def test_a_depth_the_zoo_lacks_names_the_closest_depth(workspace, tmp_path) -> None:
    torch.manual_seed(0)
    resnet26a = ResNet([4, 4, 4], [16, 32, 64], num_classes=10, width=0.25, option="A")  # 6*4+2 = 26 layers
    torch.save(to_reference(resnet26a.state_dict(), "akamaster resnet"), tmp_path / "resnet26.th")
    message = _refusal(workspace, tmp_path / "resnet26.th")
    assert "closest is resnet" in message and "the file has 4/4/4 blocks per stage" in message


def test_a_wrong_class_count_is_named(workspace, tmp_path) -> None:
    torch.save(trained_like("wrn_16_2", 0.25).state_dict(), tmp_path / "w.pt")
    message = _refusal(workspace, tmp_path / "w.pt", num_classes=100)
    assert "the file's classifier has 10 classes but --num-classes asks for 100" in message


# ---- a reused teacher keeps its own normalisation ------------------------------------------------

def test_a_reused_teacher_sees_images_normalised_with_its_own_statistics(workspace, tmp_path) -> None:
    """akamaster's CIFAR ResNets are trained with ImageNet's mean/std: distilling from one on a
    dataset with other statistics must feed it the pixels it was trained to see."""
    import threading

    from engine.api.specs import TrainSpec
    from engine.jobs import JobContext
    from engine.train.suite import load_teacher, open_session

    original = trained_like("resnet8a", 0.25, classes=20)
    torch.save(original.state_dict(), tmp_path / "teacher.th")
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    import_checkpoint(ImportSpec(str(workspace.root), str(tmp_path / "teacher.th"), name="teacher",
                                 mean=imagenet[0], std=imagenet[1]))
    spec = TrainSpec(str(workspace.root), dataset="shapes?train=4&test=4", teacher="teacher", student="resnet8a",
                     methods=("kd",), device="cpu", validation=0.0)  # 4 images: nothing to hold out
    session = open_session(spec, JobContext("test", lambda event: None, threading.Event()))
    teacher = load_teacher(session, "teacher")
    pixels = torch.rand(2, 3, 32, 32)
    data_mean, data_std = (torch.tensor(v).view(1, 3, 1, 1) for v in (session.train_set.mean, session.train_set.std))
    own_mean, own_std = (torch.tensor(v).view(1, 3, 1, 1) for v in imagenet)
    with torch.no_grad():
        seen = teacher((pixels - data_mean) / data_std)
        expected = original((pixels - own_mean) / own_std)
        _, taps = teacher.forward_taps((pixels - data_mean) / data_std)
    torch.testing.assert_close(seen, expected, rtol=1e-5, atol=1e-5)
    assert set(taps) == set(original.tap_names)
