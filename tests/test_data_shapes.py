"""The embedded shapes dataset: deterministic, masked, balanced, named, configurable."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import load_split, shapes
from engine.errors import KdcamError


def test_same_seed_gives_identical_arrays_and_other_seed_differs():
    a = shapes.generate(64, seed=5)
    b = shapes.generate(64, seed=5)
    c = shapes.generate(64, seed=6)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)


def test_train_and_test_come_from_independent_streams():
    train = shapes.generate(64, seed=0, split="train")
    test = shapes.generate(64, seed=0, split="test")
    assert not np.array_equal(train.images, test.images)


def test_arrays_have_the_imageset_layout():
    data = shapes.generate(50, num_classes=7)
    assert data.images.shape == (50, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and set(data.labels) == set(range(7))
    assert data.masks.shape == (50, 32, 32) and data.masks.dtype == bool


def test_masks_cover_a_sane_area_and_the_object_stands_out():
    data = shapes.generate(200, seed=1)
    area = data.masks.mean(axis=(1, 2))
    assert area.min() > 0.03 and area.max() < 0.6
    # the object's pixels differ from the rest of the image in colour, image by image
    pixels = data.images.astype(np.float32)
    inside = (pixels * data.masks[..., None]).sum((1, 2)) / data.masks.sum((1, 2))[:, None]
    outside = (pixels * ~data.masks[..., None]).sum((1, 2)) / (~data.masks).sum((1, 2))[:, None]
    assert np.median(np.abs(inside - outside).max(axis=1)) > 30


def test_classes_are_balanced_unique_and_readable():
    names = shapes.class_names()
    assert len(names) == shapes.DEFAULT_CLASSES == len(set(names))
    assert all("/" in name and name.replace("/", "").replace("-", "").isalpha() for name in names)
    # the deliberately similar pairs are part of the default set
    for pair in (("circle/solid", "octagon/solid"), ("circle/striped-h", "circle/striped-d")):
        assert set(pair) <= set(names)
    assert {"square/solid", "rounded-square/solid"} <= set(shapes.class_names(25))
    labels = shapes.generate(100).labels
    assert np.bincount(labels).tolist() == [5] * 20


def test_fewer_classes_are_a_prefix_of_more():
    assert shapes.class_names(30)[:20] == shapes.class_names(20)
    assert len(shapes.class_names(shapes.MAX_CLASSES)) == shapes.MAX_CLASSES


def test_spec_string_options_reach_the_generator():
    test = load_split("shapes?classes=6&train=40&test=30&seed=2", "test")
    assert len(test) == 30 and test.num_classes == 6 and test.masks is not None
    assert test.name == "shapes?classes=6&train=40&test=30&seed=2" and test.split == "test"
    np.testing.assert_array_equal(test.images, shapes.generate(30, 6, seed=2, split="test").images)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shapes?clases=3", "unknown option(s) clases"),
        ("shapes?classes=x", "classes='x' is not an integer"),
        ("shapes?classes=1", "classes must be between 2 and 40"),
        ("shapes?classes=41", "classes must be between 2 and 40"),
        ("shapes?train=0", "train=0 must be >= 1"),
        ("shapes:somewhere", "takes no path"),
        ("nosuchset", "unknown dataset 'nosuchset'"),
    ],
)
def test_bad_shapes_specs_are_explained(spec, message):
    with pytest.raises(KdcamError, match=None) as info:
        load_split(spec, "train")
    assert message in str(info.value)


def test_unknown_split_is_refused():
    with pytest.raises(KdcamError, match="split must be one of train, test"):
        load_split("shapes?train=10", "valid")
