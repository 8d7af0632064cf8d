"""shapes versions 2 and 3, the localisation testbed: varied objects, distractors, an optional spurious cue.

The statistics a study relies on are checked on a few hundred images (fast): how much of the
image the object covers, that distractors are there and never on the object, that version 3's
decoys are object-sized and of shapes no class uses, that the cue predicts the class on train
and not on test, that a seed fixes everything and that ``v=1`` and ``v=2`` still reproduce
their images bit for bit.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from engine.data import load_split, shapes
from engine.errors import KdcamError


@pytest.fixture(scope="module")
def train() -> shapes.ShapesSplit:
    return shapes.generate(600, seed=4, split="train", shortcut=0.9)


@pytest.fixture(scope="module")
def test() -> shapes.ShapesSplit:
    return shapes.generate(600, seed=4, split="test", shortcut=0.9)


def test_objects_vary_in_size_and_cover_at_most_a_quarter_on_average(train):
    area = train.masks.mean(axis=(1, 2))
    assert 0.08 < area.mean() <= 0.25
    assert area.min() > 0.01  # never vanishing
    assert np.mean(area < 0.06) > 0.05  # some are small
    assert area.max() > 3 * np.percentile(area, 10)  # and sizes vary


def test_objects_are_at_random_positions_not_in_the_middle(train):
    ys, xs = np.mgrid[0:32, 0:32]
    cx = (train.masks * xs).sum((1, 2)) / train.masks.sum((1, 2))
    cy = (train.masks * ys).sum((1, 2)) / train.masks.sum((1, 2))
    assert cx.std() > 4 and cy.std() > 4
    off_centre = np.hypot(cx - 15.5, cy - 15.5) > 6
    assert off_centre.mean() > 0.3


def test_distractors_are_present_with_their_own_masks_never_on_the_object_or_the_cue(train):
    present = train.distractor_masks.any(axis=(1, 2))
    assert 0.6 < present.mean() < 0.9
    assert not (train.distractor_masks & train.masks).any()
    assert not (train.distractor_masks & train.cue_masks).any()
    # a distractor is drawn: its pixels differ from the clutter the way an object's do
    pixels = train.images.astype(np.float32)
    rows = np.flatnonzero(present)
    inside = np.array([pixels[i][train.distractor_masks[i]].mean(0) for i in rows])
    outside = np.array([pixels[i][~(train.distractor_masks[i] | train.masks[i] | train.cue_masks[i])].mean(0)
                        for i in rows])
    assert np.median(np.abs(inside - outside).max(axis=1)) > 20


def test_the_cue_predicts_the_class_on_train_and_is_independent_of_it_on_test(train, test):
    assert train.cue_masks.any(axis=(1, 2)).mean() > 0.95
    assert not (train.cue_masks & train.masks).any()
    match = np.mean(train.cue_labels == train.labels)
    assert abs(match - 0.9) < 0.04
    # on test: chance agreement (1/20), and the cue's class carries no information about the label
    assert np.mean(test.cue_labels == test.labels) < 0.1
    table = np.zeros((20, 20))
    np.add.at(table, (test.labels, test.cue_labels), 1)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    assert chi2 < 361 + 4 * np.sqrt(2 * 361)  # within 4 sd of the chi-square's 361 degrees of freedom
    # the marker's colour is its class's colour
    row = int(np.flatnonzero(test.cue_masks.sum((1, 2)) == 16)[0])
    colour = test.images[row][test.cue_masks[row]].astype(np.float32).mean(0) / 255
    assert np.abs(colour - shapes.shapes_scenes.cue_colours(20)[test.cue_labels[row]]).max() < 0.06


def test_the_cue_changes_only_the_pixels_under_it():
    plain = shapes.generate(100, seed=2)
    cued = shapes.generate(100, seed=2, shortcut=0.5)
    assert plain.cue_masks is None and cued.cue_masks is not None
    np.testing.assert_array_equal(plain.masks, cued.masks)
    differ = (plain.images != cued.images).any(axis=-1)
    assert differ.any() and not (differ & ~cued.cue_masks).any()


def test_a_seed_fixes_every_array_and_another_seed_changes_them():
    a, b, c = (shapes.generate(80, seed=s, shortcut=0.9) for s in (7, 7, 8))
    for name in ("images", "labels", "masks", "distractor_masks", "cue_masks", "cue_labels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.images, c.images)


def test_version_1_reproduces_the_first_generator_bit_for_bit():
    # hashes of the images, labels and masks the first version wrote (commit eb8c02d)
    expected = {"train": "0e436af19ed6f6c2b522305b728451f6f6d6d870603c5aa6d113f205550e3468",
                "test": "35c775e6f5ebd5934b924ca1ab4242aa6aea876e84a2f862113289b3d8497f19"}
    for split, digest in expected.items():
        data = load_split("shapes?v=1&train=300&test=300&seed=3", split)
        assert data.distractor_masks is None and data.cue_masks is None
        assert data.class_names == shapes.class_names(20, version=1) and "octagon/solid" in data.class_names
        assert data.mean == shapes.MEAN_V1
        blob = data.images.tobytes() + data.labels.tobytes() + data.masks.tobytes()
        assert hashlib.sha256(blob).hexdigest() == digest


def test_version_2_reproduces_its_images_bit_for_bit():
    # hashes of every array version 2 wrote while it was the default (commit ebeaf36)
    expected = {"train": "1e43e38c4fdc00ca93019f42306827a74de9036398f9164f17ac85425524ddc2",
                "test": "469291024e617e536a0c150273e1595e3d46262bd42d57be1885ba9c7bf026e4"}
    for split, digest in expected.items():
        data = load_split("shapes?v=2&train=300&test=300&seed=3&shortcut=0.7", split)
        assert data.mean == shapes.statistics(2)[0] != shapes.MEAN
        arrays = (data.images, data.labels, data.masks, data.distractor_masks, data.cue_masks, data.cue_labels)
        blob = b"".join(np.asarray(a).tobytes() for a in arrays)
        assert hashlib.sha256(blob).hexdigest() == digest


def test_decoys_are_object_sized_where_version_2_drew_small_bars(train):
    bars = shapes.generate(600, seed=4, split="train", version=2)

    def area(split: shapes.ShapesSplit) -> float:
        assert split.distractor_masks is not None
        pixels = split.distractor_masks.sum(axis=(1, 2))
        return float(np.median(pixels[pixels > 0]))

    assert area(train) > 2 * area(bars)
    object_area = train.masks.sum(axis=(1, 2))
    assert area(train) < np.median(object_area)  # smaller than the labelled object, typically


def test_decoys_take_only_shapes_no_class_uses():
    def used(classes: int) -> set[int]:
        return {s for s, _ in shapes.class_table(classes)}

    assert [shapes.shapes_scenes.SHAPES[s] for s in shapes.shapes_scenes.decoy_shapes(np.array(sorted(used(20))))] \
        == ["diamond", "ring", "half-disc", "star"]
    for classes in (2, 20, 25, shapes.max_decoy_classes()):
        decoys = set(shapes.shapes_scenes.decoy_shapes(np.array(sorted(used(classes)))).tolist())
        assert decoys and not decoys & used(classes)
    with pytest.raises(KdcamError, match="decoys from shapes no class uses"):
        shapes.generate(10, num_classes=shapes.max_decoy_classes() + 1)
    assert shapes.generate(10, num_classes=40, version=2).distractor_masks is not None


def test_each_version_normalises_with_its_own_measured_statistics():
    for version in shapes.VERSIONS:
        pixels = shapes.generate(800, seed=0, version=version).images.astype(np.float64) / 255
        mean, std = shapes.statistics(version)
        np.testing.assert_allclose(pixels.mean(axis=(0, 1, 2)), mean, atol=0.01)
        np.testing.assert_allclose(pixels.std(axis=(0, 1, 2)), std, atol=0.01)


def test_spec_options_reach_the_generator_and_bad_ones_are_explained():
    data = load_split("shapes?train=50&test=40&shortcut=0.9&seed=1", "test")
    assert data.cue_masks is not None and data.cue_labels is not None and data.distractor_masks is not None
    assert data.class_names == shapes.class_names(20) and "octagon/solid" not in data.class_names
    assert data.mean == shapes.MEAN == shapes.statistics(3)[0]
    for spec, message in (("shapes?v=4", "versions are 1, 2, 3"), ("shapes?shortcut=1.5", "probability in [0, 1]"),
                          ("shapes?shortcut=x", "probability in [0, 1]"), ("shapes?v=1&shortcut=0.5", "needs v=2"),
                          ("shapes?classes=40", "at most 35 classes, or v=2")):
        with pytest.raises(KdcamError, match=None) as info:
            load_split(spec + "&train=10", "train")
        assert message in str(info.value)


def test_subset_cuts_every_per_image_array_alike():
    data = load_split("shapes?train=30&shortcut=0.9", "train")
    rows = np.array([3, 1, 7])
    part = data.subset(rows, "validation")
    assert part.split == "validation" and len(part) == 3
    for name in ("images", "labels", "masks", "distractor_masks", "cue_masks", "cue_labels"):
        np.testing.assert_array_equal(getattr(part, name), getattr(data, name)[rows])
