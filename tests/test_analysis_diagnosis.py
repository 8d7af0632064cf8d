"""Per-class diagnosis on hand-made outcomes: counts, rankings and the written findings."""

import numpy as np

from engine.analysis.diagnosis import ModelOutcomes, confusion_matrix, diagnose, error_images, related

NAMES = ["circle/solid", "octagon/solid", "square/dotted"]


def _outcomes(labels, preds, confidences, energy=None):
    labels, preds = np.array(labels), np.array(preds)
    n = len(labels)
    energy = np.full(n, np.nan) if energy is None else np.array(energy, dtype=float)
    return ModelOutcomes(labels, preds, np.array(confidences, dtype=np.float32), np.full(n, 0.1, np.float32),
                         energy, np.where(np.isnan(energy), np.nan, 1.0))


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_related_classes_share_a_name_part_or_a_superclass():
    assert related("circle/solid", "octagon/solid") == "solid"
    assert related("circle/solid", "square/dotted") is None
    assert related("maple_tree", "oak_tree", {"maple_tree": "trees", "oak_tree": "trees"}) == "trees"
    assert related("apple", "bus") is None


def test_worst_errors_are_the_most_confident_per_class_and_never_cross_classes():
    # class 0: errors with confidence .9 (image 1), .6 (image 2); class 1: one error .8 (image 4)
    outcomes = _outcomes([0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 0, 2], [0.7, 0.9, 0.6, 0.4, 0.8, 0.95])
    d = diagnose(outcomes, NAMES, worst_per_class=3)
    assert d["accuracy"] == 0.5
    worst = {entry["class"]: [(i["image"], i["predicted"]) for i in entry["items"]] for entry in d["worst_errors"]}
    assert worst == {0: [(1, 1), (2, 1)], 1: [(4, 0)]}
    assert [i["row"] for e in d["worst_errors"] for i in e["items"]] == [0, 1, 2]
    images, true, pred = error_images(d)
    assert images.tolist() == [1, 2, 4] and true.tolist() == [0, 0, 1] and pred.tolist() == [1, 1, 0]
    low = {entry["class"]: [i["image"] for i in entry["items"]] for entry in d["low_confidence_correct"]}
    assert low == {1: [3]}  # the only correct prediction below 50% confidence
    assert d["per_class"][0]["accuracy"] == 1 / 3 and d["per_class"][2]["accuracy"] == 1.0
    assert d["confused_pairs"][0] == {"true": 0, "predicted": 1, "count": 2, "rate": 2 / 3, "related": "solid"}


def test_summary_names_confusions_between_related_classes_and_maps_off_the_object():
    labels = [0] * 10 + [1] * 10
    preds = [1] * 4 + [0] * 6 + [1] * 10
    energy = [0.1] * 4 + [0.8] * 16  # errors look elsewhere
    d = diagnose(_outcomes(labels, preds, [0.95] * 20, energy), NAMES, worst_per_class=2)
    text = " ".join(d["summary"])
    assert "circle/solid taken for octagon/solid" in text
    assert "related classes" in text
    assert "off the object" in text
    assert "confidence ≥ 90%" in text
    assert len(d["recommendations"]) >= 3


def test_a_perfect_model_gets_no_recommendations():
    d = diagnose(_outcomes([0, 1, 2], [0, 1, 2], [0.9, 0.9, 0.9]), NAMES, worst_per_class=3)
    assert d["worst_errors"] == [] and d["confused_pairs"] == [] and d["recommendations"] == []


def test_cifar100_names_are_grouped_by_superclass():
    from engine.analysis.superclasses import CIFAR100_SUPERCLASSES, superclasses_for

    assert len(CIFAR100_SUPERCLASSES) == 100 and len(set(CIFAR100_SUPERCLASSES.values())) == 20
    table = superclasses_for(["maple_tree", "oak_tree", "bus"])
    assert related("maple_tree", "oak_tree", table) == "trees"
    assert related("maple_tree", "bus", table) is None
    assert superclasses_for(["circle/solid"]) is None


def test_two_models_with_different_mistakes_get_their_own_findings_and_advice():
    """Every model used to get the same recommendations: each now cites its own confusion and errors."""
    labels = [0] * 10 + [1] * 10 + [2] * 10
    energy = [0.1] * 4 + [0.8] * 26
    a = diagnose(_outcomes(labels, [1] * 4 + [0] * 6 + [1] * 10 + [2] * 10, [0.95] * 30, energy), NAMES, 2)
    b = diagnose(_outcomes(labels, [0] * 10 + [1] * 10 + [0] * 3 + [2] * 7, [0.97] * 30,
                           [0.8] * 20 + [0.1] * 3 + [0.8] * 7), NAMES, 2)
    assert a["summary"] != b["summary"]
    for d, true, predicted in ((a, "circle/solid", "octagon/solid"), (b, "square/dotted", "circle/solid")):
        advice = " ".join(d["recommendations"])
        assert f"a {true} taken for {predicted} at" in advice
        assert f"most often on {true} images" in advice
    assert set(a["recommendations"]).isdisjoint(b["recommendations"])
