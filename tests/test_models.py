"""The model zoo: sizes match the literature, logits and taps have the advertised shapes,
and every tap is exactly one module's output (what reference CAM libraries hook)."""

from __future__ import annotations

import pytest
import torch

from engine.errors import KdcamError
from engine.models import architectures, build_model, count_parameters

# DESIGN §3 for the VGGs; the others are the counts RepDistiller/mdistiller (CRD, Tian et al. 2020, Table 1)
# report for CIFAR-100; option A ResNets are their option B twins less the shortcut convolutions.
PARAMS_100_CLASSES = {
    "vgg8": 3.97e6, "vgg11": 9.28e6, "vgg13": 9.46e6, "vgg16": 14.77e6, "vgg19": 20.09e6,
    "resnet20": 0.278e6, "resnet32": 0.473e6, "resnet56": 0.862e6, "resnet110": 1.737e6,
    "resnet8": 0.084e6, "resnet14": 0.181e6, "resnet44": 0.667e6,
    "resnet8a": 0.081e6, "resnet14a": 0.178e6, "resnet20a": 0.276e6, "resnet32a": 0.470e6, "resnet44a": 0.664e6,
    "resnet56a": 0.859e6, "resnet110a": 1.734e6,
    "resnet8x4": 1.23e6, "resnet32x4": 7.43e6,
    "wrn_16_1": 0.181e6, "wrn_16_2": 0.70e6, "wrn_40_1": 0.57e6, "wrn_40_2": 2.26e6,
    "resnet18": 11.22e6, "resnet34": 21.33e6, "resnet50": 23.71e6,
    "mobilenetv2": 0.81e6, "shufflenetv1": 0.95e6, "shufflenetv2": 1.36e6,
}

EXPECTED_TAPS = {
    "vgg8": [("stage1", 16, 32), ("stage2", 32, 16), ("stage3", 64, 8), ("stage4", 128, 4), ("stage5", 128, 4)],
    "resnet20": [("stem", 4, 32), ("layer1", 4, 32), ("layer2", 8, 16), ("layer3", 16, 8)],
    "resnet18": [("stem", 16, 32), ("layer1", 16, 32), ("layer2", 32, 16), ("layer3", 64, 8), ("layer4", 128, 4)],
    "attention_cnn": [("stage1", 8, 32), ("stage2", 16, 16), ("stage3", 16, 8), ("attention", 1, 8),
                      ("features", 16, 8), ("attended", 16, 8)],
}


@pytest.mark.parametrize("arch", sorted(PARAMS_100_CLASSES))
def test_parameter_counts_match_the_literature_for_100_classes(arch: str) -> None:
    with torch.device("meta"):  # counts only: no memory, no init cost
        model = build_model(arch, 100)
    assert count_parameters(model) == pytest.approx(PARAMS_100_CLASSES[arch], rel=0.005)


def test_every_architecture_is_covered_by_these_tests() -> None:
    assert set(architectures()) == set(PARAMS_100_CLASSES) | {"attention_cnn"}


@pytest.mark.parametrize("arch", architectures())
def test_logits_and_taps_have_the_advertised_shapes(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=7, width=0.25).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits, taps = model.forward_taps(x)
        plain = model(x)
    assert logits.shape == (2, 7)
    torch.testing.assert_close(plain, logits)
    assert tuple(taps) == model.tap_names
    info = {t.name: (t.channels, t.height, t.width) for t in model.tap_info(32)}
    assert info == {name: tuple(t.shape[1:]) for name, t in taps.items()}
    assert model.default_cam_tap in model.tap_names and model.default_hint_tap in model.tap_names
    assert model.num_classes == 7


@pytest.mark.parametrize("arch", sorted(EXPECTED_TAPS))
def test_tap_channels_and_sizes(arch: str) -> None:
    model = build_model(arch, num_classes=10, width=0.25)
    assert [(t.name, t.channels, t.height) for t in model.tap_info(32)] == EXPECTED_TAPS[arch]
    assert all(t.height == t.width for t in model.tap_info(32))


@pytest.mark.parametrize("arch", architectures())
def test_tap_module_output_is_the_tap(arch: str) -> None:
    """Hooking ``tap_module(name)`` (as pytorch-grad-cam does) sees exactly the tap tensor."""
    torch.manual_seed(1)
    model = build_model(arch, num_classes=5, width=0.25).eval()
    x = torch.randn(2, 3, 32, 32)
    seen: dict[str, torch.Tensor] = {}
    handles = [
        model.tap_module(name).register_forward_hook(lambda m, a, out, name=name: seen.setdefault(name, out.clone()))
        for name in model.tap_names
    ]
    with torch.no_grad():
        _, taps = model.forward_taps(x)
    for handle in handles:
        handle.remove()
    for name in model.tap_names:
        torch.testing.assert_close(seen[name], taps[name], msg=f"{arch} tap {name}")


def test_default_cam_tap_is_the_last_conv_stage() -> None:
    assert build_model("vgg11", 10, 0.25).default_cam_tap == "stage5"
    assert build_model("resnet32", 10, 0.25).default_cam_tap == "layer3"
    assert build_model("resnet34", 10, 0.25).default_cam_tap == "layer4"
    assert build_model("attention_cnn", 10, 0.25).default_cam_tap == "attended"


def test_vgg_pools_after_stage4_only_at_64_pixels() -> None:
    """At 32 px the fourth pool is skipped, at 64 px it is applied: stage5 is 4x4 either way."""
    model = build_model("vgg8", 10, 0.25)
    assert [t.height for t in model.tap_info(32)] == [32, 16, 8, 4, 4]
    assert [t.height for t in model.tap_info(64)] == [64, 32, 16, 8, 4]
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_attention_map_is_one_channel_in_unit_range() -> None:
    model = build_model("attention_cnn", 10).eval()
    with torch.no_grad():
        _, taps = model.forward_taps(torch.randn(3, 3, 32, 32))
    attention = taps[model.attention_tap]
    assert attention.shape == (3, 1, 8, 8)
    assert attention.min() >= 0 and attention.max() <= 1


def test_width_multiplier_and_grey_inputs() -> None:
    full, half = build_model("resnet20", 10), build_model("resnet20", 10, width=0.5)
    assert [t.channels for t in half.tap_info()] == [c // 2 for c in (t.channels for t in full.tap_info())]
    grey = build_model("vgg8", 10, 0.25, in_channels=1).eval()
    with torch.no_grad():
        assert grey(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("vgg99", 10), "unknown architecture 'vgg99'"), (("vgg8", 0), "num_classes"), (("vgg8", 10, -1.0), "width")],
)
def test_bad_model_requests_are_explained(args: tuple, message: str) -> None:
    with pytest.raises(KdcamError, match=message):
        build_model(*args)
