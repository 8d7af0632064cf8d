"""The naming and display policy every list follows (engine.api.display)."""

from __future__ import annotations

import pytest

from engine.api.display import Column, csv_number, fit_columns, group_twins, natural_sorted, shorten, shorten_all

NAMES = ["resnet8x4-kd-shapes-demo-s0", "resnet8x4-fitnet-shapes-demo-s0", "resnet8x4-crd-shapes-demo-s0",
         "resnet8x4-similarity-shapes-demo-s0"]


def test_natural_sort_orders_numbers_by_value() -> None:
    assert natural_sorted(["vgg16", "vgg8", "vgg11", "resnet110", "resnet20", "s10", "s2"], key=str) == \
        ["resnet20", "resnet110", "s2", "s10", "vgg8", "vgg11", "vgg16"]


def test_last_twins_fold_under_their_best_checkpoint() -> None:
    groups = group_twins(["vgg16-s0-last", "vgg8-s0", "vgg16-s0", "vgg8-s0-last", "orphan-last"], key=str)
    assert [(g.best, g.last) for g in groups] == [
        ("orphan-last", None), ("vgg8-s0", "vgg8-s0-last"), ("vgg16-s0", "vgg16-s0-last")]


@pytest.mark.parametrize("width", [12, 16, 20, 24])
def test_shortened_names_keep_the_part_that_differs(width: int) -> None:
    short = shorten_all(NAMES, width)
    assert all(len(text) <= width for text in short.values())
    assert len(set(short.values())) == len(NAMES)  # never two names that look the same
    for name, text in short.items():
        method = name.split("-")[1]
        if len(method) + 2 <= width:
            assert method in text, (name, text)


def test_a_name_and_its_twin_stay_apart_when_shortened() -> None:
    short = shorten_all(["vgg11-si-shapes-demo-s0", "vgg11-si-shapes-demo-s0-last"], 16)
    assert short["vgg11-si-shapes-demo-s0-last"].endswith("-last")
    assert not short["vgg11-si-shapes-demo-s0"].endswith("-last")


TWINS = ["vgg11-si-shapes-demo-s0", "vgg11-si-shapes-demo-s0-last"]
COPIES = ["resnet8x4-kd-shapes-demo-s0", "resnet8x4-kd-shapes-demo-s0-2", "resnet8x4-kd-shapes-demo-s0-3"]
PAIRS = ["run-kd-shapes-s0", "run-kd-shapes-s0-last", "run-at-shapes-s0", "run-at-shapes-s0-last"]
SHARED = ["longprefix-common-q-commonsuffixlong", "longprefix-common-z-commonsuffixlong"]
LONG_PART = ["model-distillation-s0", "model-similarity-s0"]
ZOO = ["vgg16-shapes-demo-teacher", *(f"vgg11-{m}-shapes-demo-s0" for m in ("si", "kd", "dkd", "hints"))]


@pytest.mark.parametrize(("names", "width", "kept"), [
    (["x", "x-last"], 6, {"x": "x", "x-last": "x-last"}),
    (["x-long-name", "x-long-name-last"], 8, {"x-long-name": "name", "x-long-name-last": "-last"}),
    (TWINS, 8, {TWINS[0]: "s0", TWINS[1]: "-last"}),
    (TWINS, 12, {TWINS[0]: "-s0", TWINS[1]: "-last"}),
    (COPIES, 6, {COPIES[0]: "s0", COPIES[1]: "-2", COPIES[2]: "-3"}),
    (COPIES, 12, {COPIES[0]: "-s0", COPIES[1]: "-s0-2", COPIES[2]: "-s0-3"}),
    # twins of two methods: each name keeps its method and, where it has one, its -last
    (PAIRS, 12, {PAIRS[0]: "kd", PAIRS[1]: "kd", PAIRS[2]: "at", PAIRS[3]: "at"}),
    (PAIRS, 12, {PAIRS[1]: "-last", PAIRS[3]: "-last"}),
    (SHARED, 10, {SHARED[0]: "q", SHARED[1]: "z"}),
    (SHARED, 3, {SHARED[0]: "q", SHARED[1]: "z"}),
    # a name unlike all the others: where it parts from them at each end (vgg16 from vgg11, teacher from s0)
    (ZOO, 19, {ZOO[0]: "vgg16", **{name: name.split("-")[1] for name in ZOO[1:]}}),
    (ZOO, 19, {ZOO[0]: "teacher"}),
    # narrower than the part that differs: as much of it as fits
    (LONG_PART, 8, {LONG_PART[0]: "distil", LONG_PART[1]: "simila"}),
])
def test_the_part_that_differs_survives_shortening(names: list[str], width: int, kept: dict[str, str]) -> None:
    short = shorten_all(names, width)
    assert all(len(text) <= width for text in short.values()), short
    assert len(set(short.values())) == len(names), short  # never two names that look the same
    for name, part in kept.items():
        assert part in short[name], (name, short[name])
    for name in names:  # a name that ends where its twin goes on shows its end
        if any(other.startswith(name) for other in names if other != name) or name.endswith("-last"):
            assert short[name][-1] == name[-1], (name, short[name])


@pytest.mark.parametrize(("name", "width", "end"), [
    ("vgg11-si-shapes-demo-s0-last", 10, "-last"),
    ("resnet8x4-kd-shapes-demo-s0-2", 8, "-2"),
    ("resnet8x4-kd-shapes-demo-s0-2-last", 12, "-2-last"),
])
def test_a_name_shortened_alone_keeps_its_copy_marker(name: str, width: int, end: str) -> None:
    text = shorten(name, width)
    assert len(text) == width and text.endswith(end)


def test_repeated_tokens_still_look_different() -> None:
    names = ["demo-s0", "demo-s0-s0", "vgg8-s0", "vgg8-vgg8-s0"]
    for width in range(3, 12):
        short = shorten_all(names, width)
        assert len(set(short.values())) == len(names) and all(len(t) <= width for t in short.values()), short


def test_short_names_are_untouched_and_cuts_are_in_the_middle() -> None:
    assert shorten("teacher", 10) == "teacher"
    assert shorten("abcdefghijklmnopqrstuvwxyz", 10) == "abcde…wxyz"


def test_csv_numbers_carry_no_float32_noise() -> None:
    assert csv_number(0.7009999752044678) == "0.701"
    assert csv_number(12) == "12" and csv_number(3.0) == "3" and csv_number(None) == ""
    assert csv_number(1234.5677490234375) == "1234.568"
    assert float(csv_number(1e-9)) == 1e-9


def test_columns_are_dropped_least_useful_first_and_names_shrink() -> None:
    name = Column("name", ("a-very-long-checkpoint-name-s0",), 100, shrink=True, min_width=12)
    columns = [name, Column("created", ("01-02 03:04",), 1), Column("acc", ("72.90%",), 9)]
    fitted = fit_columns(columns, 30, gap=3)
    assert [(c.header, w) for c, w in fitted] == [("name", 21), ("acc", 6)]
    assert sum(w for _, w in fitted) + 3 * (len(fitted) - 1) <= 30
    assert [c.header for c, _ in fit_columns(columns, 200, gap=3)] == ["name", "created", "acc"]
