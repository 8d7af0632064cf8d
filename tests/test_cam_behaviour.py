"""What callers of ``engine.cam`` rely on beyond matching the reference: degenerate maps
flagged, the model left exactly as it was (mode, gradients, hooks), clear errors, targets."""

from __future__ import annotations

import pytest
import torch
from pytorch_grad_cam import GradCAM, ScoreCAM

from engine.cam import (
    METHODS,
    ClassTarget,
    OwnPrediction,
    Target,
    compute_cams,
    postprocess,
    resolve_targets,
)
from engine.cam.methods import GRADIENT_METHODS
from engine.errors import KdcamError
from engine.models import build_model
from tests.test_cam_support import batch, reference_raw, trained_model


@pytest.fixture(scope="module")
def vgg():
    return trained_model("vgg8", 0.25)


@pytest.fixture(scope="module")
def attention_model():
    return trained_model("attention_cnn", 0.25)


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


# --- post-processing and degenerate maps -------------------------------------------------

def test_postprocess_scales_each_map_to_unit_range():
    raw = torch.tensor([[[0.0, 1.0], [2.0, 4.0]], [[-1.0, -2.0], [3.0, 5.0]]])
    maps, degenerate = postprocess(raw, (8, 8))
    assert maps.shape == (2, 8, 8) and maps.dtype == torch.float32
    assert not degenerate.any()
    assert torch.allclose(maps.amin(dim=(1, 2)), torch.zeros(2))
    assert torch.allclose(maps.amax(dim=(1, 2)), torch.ones(2), atol=1e-6)


def test_flat_and_all_negative_maps_are_degenerate_and_zero():
    raw = torch.stack([torch.full((2, 2), 3.0), -torch.rand(2, 2) - 0.1, torch.tensor([[0.0, 5e-8], [0.0, 0.0]]),
                       torch.tensor([[0.0, 1.0], [0.0, 0.0]])])
    maps, degenerate = postprocess(raw, (4, 4))
    assert degenerate.tolist() == [True, True, True, False]
    assert maps[:3].abs().sum() == 0


def test_model_with_no_evidence_gives_degenerate_gradcam():
    model = build_model("vgg8", 10, width=0.25).eval()
    torch.nn.init.zeros_(model.classifier.weight)  # every logit is constant: gradients are zero
    cams = compute_cams(model, batch(3)[0], [0, 1, 2])
    assert cams.degenerate.all() and cams.maps.abs().sum() == 0


# --- the model is left as it was ---------------------------------------------------------

@pytest.mark.parametrize("method", [m for m in METHODS if m != "attention"])
def test_no_parameter_gradients_hooks_or_graph_left(vgg, method):
    images, labels = batch(2)
    cams = compute_cams(vgg, images, labels, method=method, score_chunk=64)
    assert all(p.grad is None for p in vgg.parameters())
    assert _hooks(vgg) == 0
    assert not cams.maps.requires_grad and not cams.raw.requires_grad and not cams.logits.requires_grad
    assert torch.allclose(cams.logits, vgg(images), atol=1e-5)


class _Exploding(Target):
    def score(self, outputs, rows):
        raise RuntimeError("boom")


@pytest.mark.parametrize("method", ["gradcam", "scorecam"])
def test_mode_restored_and_nothing_left_after_an_error(method):
    model = build_model("vgg8", 10, width=0.25)
    model.train()
    model.stage2.eval()  # a mixed state must come back exactly
    before = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError, match="boom"):
        compute_cams(model, batch(2)[0], _Exploding(), method=method)
    assert [m.training for m in model.modules()] == before
    assert _hooks(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_runs_in_eval_mode_and_restores_training():
    model = trained_model("vgg8", 0.25).train()
    images, labels = batch(4)
    train_cams = compute_cams(model, images, labels)
    assert model.training
    eval_cams = compute_cams(model.eval(), images, labels)
    assert torch.equal(train_cams.maps, eval_cams.maps)


def test_frozen_weights_still_give_gradient_maps(vgg):
    images, labels = batch(2)
    expected = compute_cams(vgg, images, labels)
    for p in vgg.parameters():
        p.requires_grad_(False)
    try:
        frozen = compute_cams(vgg, images, labels)
    finally:
        for p in vgg.parameters():
            p.requires_grad_(True)
    assert torch.allclose(frozen.maps, expected.maps, atol=1e-6)


def test_fast_path_leaves_weights_and_their_layout_untouched(vgg):
    """The body runs channels-last with BN folded into temporary weights: the model keeps its own."""
    before = {name: t.clone() for name, t in vgg.state_dict().items()}
    compute_cams(vgg, *batch(2))
    after = vgg.state_dict()
    assert all(torch.equal(after[name], t) for name, t in before.items())
    assert all(p.is_contiguous() for p in vgg.parameters())  # still the default (NCHW) layout


def test_maps_follow_weights_changed_between_calls():
    """Folded weights are reused across batches only while the model's tensors are unchanged."""
    images, labels = batch(3)
    model, other = trained_model("vgg8", 0.25, seed=0), trained_model("vgg8", 0.25, seed=5)
    first = compute_cams(model, images, labels)
    model.load_state_dict(other.state_dict())
    reloaded = compute_cams(model, images, labels)
    assert torch.allclose(reloaded.maps, compute_cams(other, images, labels).maps, atol=1e-6)
    assert not torch.allclose(reloaded.maps, first.maps, atol=1e-2)


def test_scorecam_chunking_does_not_change_the_maps(vgg):
    images, labels = batch(2)  # 2 images x 128 channels: chunks of 100 split an image's channels
    small = compute_cams(vgg, images, labels, method="scorecam", score_chunk=100)
    large = compute_cams(vgg, images, labels, method="scorecam", score_chunk=1024)
    assert torch.allclose(small.maps, large.maps, atol=1e-6)


# --- layers, methods and their errors ----------------------------------------------------

def test_unknown_tap_lists_the_models_taps(vgg):
    with pytest.raises(KdcamError, match="unknown layer 'conv9'.*stage1, stage2, stage3, stage4, stage5"):
        compute_cams(vgg, batch(1)[0], [0], tap="conv9")


def test_attention_needs_an_attention_model(vgg):
    with pytest.raises(KdcamError, match="attention.*VGG has none"):
        compute_cams(vgg, batch(1)[0], [0], method="attention")


def test_unknown_method_lists_the_methods(vgg):
    with pytest.raises(KdcamError, match="unknown CAM method 'gradcam3'.*gradcam\\+\\+"):
        compute_cams(vgg, batch(1)[0], [0], method="gradcam3")


def test_default_tap_is_the_models_last_stage(vgg):
    images, labels = batch(2)
    assert torch.equal(compute_cams(vgg, images, labels).raw, compute_cams(vgg, images, labels, tap="stage5").raw)


def test_every_tap_gives_input_sized_maps(vgg):
    images, labels = batch(2)
    for tap in vgg.tap_names:
        assert compute_cams(vgg, images, labels, tap=tap).maps.shape == (2, 32, 32)


def test_attention_method_is_the_models_own_attention_map(attention_model):
    images, labels = batch(3)
    cams = compute_cams(attention_model, images, labels, method="attention")
    with torch.no_grad():
        _, taps = attention_model.forward_taps(images)
    expected, _ = postprocess(taps["attention"][:, 0], (32, 32))
    assert torch.allclose(cams.maps, expected)


@pytest.mark.parametrize("method", list(GRADIENT_METHODS))
def test_gradient_methods_on_the_attention_model_tap(attention_model, method):
    images, labels = batch(2)
    cams = compute_cams(attention_model, images, labels, method=method, tap="features")
    assert cams.raw.shape == (2, 8, 8) and cams.maps.shape == (2, 32, 32)


# --- targets -----------------------------------------------------------------------------

def test_label_target_is_the_given_classes(vgg):
    images, labels = batch(3)
    assert torch.equal(compute_cams(vgg, images, resolve_targets("label", labels=labels)).maps,
                       compute_cams(vgg, images, labels.tolist()).maps)


def test_own_and_teacher_targets_follow_predictions(vgg):
    images, _ = batch(3)
    own = vgg(images).argmax(dim=1)
    assert torch.equal(compute_cams(vgg, images, resolve_targets("own")).maps, compute_cams(vgg, images, own).maps)
    teacher_logits = torch.randn(3, 10)
    assert torch.equal(compute_cams(vgg, images, resolve_targets("teacher", teacher_logits=teacher_logits)).maps,
                       compute_cams(vgg, images, teacher_logits.argmax(dim=1)).maps)


def test_fixed_class_target(vgg):
    images, _ = batch(3)
    assert torch.equal(compute_cams(vgg, images, resolve_targets("class:4")).maps,
                       compute_cams(vgg, images, [4, 4, 4]).maps)
    with pytest.raises(KdcamError, match="class:12 is out of range"):
        compute_cams(vgg, images, resolve_targets("class:12"))


def test_own_prediction_is_fixed_on_the_clean_image_for_scorecam(vgg):
    """pytorch-grad-cam's default targets are the clean argmax; masked inputs must not change them."""
    images, _ = batch(3)
    ours = compute_cams(vgg, images, OwnPrediction(), method="scorecam")
    expected, _ = postprocess(reference_raw(ScoreCAM, vgg, "stage5", images, None), (32, 32))
    assert (ours.maps - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("spec", ["cosine", "norm"])
def test_embedding_targets_match_reference_with_the_same_score(vgg, spec):
    """The classifier's 10 outputs stand in for an embedding; the reference gets the same score."""
    images, _ = batch(3)
    target = resolve_targets(spec, reference=torch.randn(10, generator=torch.Generator().manual_seed(5)))
    ours = compute_cams(vgg, images, target)
    per_image = [lambda output: target.bind(output[None]).score(output[None], torch.tensor([0]))[0]] * 3
    expected, _ = postprocess(reference_raw(GradCAM, vgg, "stage5", images, per_image), (32, 32))
    assert (ours.maps - expected).abs().max() <= 1e-4


def test_cosine_target_per_image_references():
    outputs = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    target = resolve_targets("cosine", reference=torch.tensor([[1.0, 0.0], [1.0, 0.0]])).bind(outputs)
    assert torch.allclose(target.score(outputs, torch.tensor([0, 1])), torch.tensor([1.0, 0.0]))
    assert torch.allclose(resolve_targets("norm").score(outputs, torch.tensor([0, 1])), torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize("spec,kwargs,message", [
    ("label", {}, "needs the ground-truth labels"),
    ("teacher", {}, "needs the teacher's outputs"),
    ("cosine", {}, "needs a reference embedding"),
    ("class:x", {}, "expected class:K"),
    ("class:-1", {}, "non-negative"),
    ("best", {}, "unknown target 'best'; choose one of: label, teacher, own"),
])
def test_target_spec_errors(spec, kwargs, message):
    with pytest.raises(KdcamError, match=message):
        resolve_targets(spec, **kwargs)


def test_class_targets_must_fit_the_batch_and_the_model(vgg):
    with pytest.raises(KdcamError, match="out of range: the model has 10 classes"):
        compute_cams(vgg, batch(1)[0], ClassTarget([10]))
    with pytest.raises(KdcamError, match="3 target classes for 2 images"):
        compute_cams(vgg, batch(2)[0], [1, 2, 3])


def test_cosine_reference_must_match_the_embedding(vgg):
    with pytest.raises(KdcamError, match="reference embedding has 4 dims, the model outputs 10"):
        compute_cams(vgg, batch(2)[0], resolve_targets("cosine", reference=torch.ones(4)))
    with pytest.raises(KdcamError, match="3 reference embeddings for 2 images"):
        compute_cams(vgg, batch(2)[0], resolve_targets("cosine", reference=torch.ones(3, 10)))
