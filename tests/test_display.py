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
