"""One naming and display policy for every front-end (CLI tables, TUI lists, reports, CSVs). Torch-free.

Checkpoint names are long and mostly alike (``resnet8x4-fitnet-shapes-demo-s0``): lists sort
them naturally (vgg8 before vgg16), fold each ``-last`` twin under its best checkpoint, and
shorten them from the middle while keeping the part that tells them apart. Accuracy is a
percentage everywhere; numbers in CSVs carry no float32 noise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: the trainer saves the best epoch as NAME and the final epoch as NAME + LAST_SUFFIX
LAST_SUFFIX = "-last"
ELLIPSIS = "…"
_DIGITS = re.compile(r"(\d+)")
_SEPARATORS = "-_./ "


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value: vgg8 < vgg11 < vgg16, s2 < s10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower())
                 for part in _DIGITS.split(text) if part)


def natural_sorted(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    return sorted(items, key=lambda item: natural_key(key(item)))


def twin_of(name: str) -> str | None:
    """The best checkpoint a ``-last`` name belongs to (None for any other name)."""
    return name[: -len(LAST_SUFFIX)] if name.endswith(LAST_SUFFIX) and len(name) > len(LAST_SUFFIX) else None


@dataclass(frozen=True)
class Group(Generic[T]):
    """A checkpoint as a person thinks of it: the best epoch, with the final epoch folded under it."""

    best: T
    last: T | None = None

    def members(self) -> tuple[T, ...]:
        return (self.best,) if self.last is None else (self.best, self.last)


def group_twins(items: Iterable[T], key: Callable[[T], str]) -> list[Group[T]]:
    """Pair every ``NAME-last`` with ``NAME``, in natural order of the names.

    A ``-last`` whose best checkpoint is absent (deleted or renamed) stands as its own group.
    """
    by_name = {key(item): item for item in items}
    groups = []
    for name, item in by_name.items():
        base = twin_of(name)
        if base is not None and base in by_name:
            continue  # folded under its best checkpoint
        groups.append(Group(item, by_name.get(name + LAST_SUFFIX)))
    return natural_sorted(groups, key=lambda group: key(group.best))


def is_folded_twin(name: str, names: Iterable[str]) -> bool:
    """True for a ``-last`` checkpoint whose best twin is also present (pickers leave it out by default)."""
    base = twin_of(name)
    return base is not None and base in set(names)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _distinct_span(name: str, prefix: int, suffix: int) -> tuple[int, int]:
    """[start, end) of the part of ``name`` that differs from its most similar neighbours (which share
    ``prefix`` leading and ``suffix`` trailing characters with it), widened to whole tokens: ``kd``
    rather than ``k`` next to ``crd``."""
    start, end = prefix, len(name) - suffix
    if end <= start:  # one name is the other plus a suffix (vgg8 vs vgg8-last): the end tells them apart
        start, end = min(start, len(name)), len(name)
    while start > 0 and name[start - 1] not in _SEPARATORS:
        start -= 1
    while end < len(name) and name[end] not in _SEPARATORS:
        end += 1
    return start, end


def _overlaps(names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per name, the longest prefix and suffix it shares with any other name. The name sharing the
    longest prefix is a neighbour in sorted order (and likewise for suffixes in order of the reversed
    names), so this takes O(n log n), not O(n^2): class lists may hold thousands of names."""
    unique = sorted(set(names))
    prefix = dict.fromkeys(unique, 0)
    suffix = dict.fromkeys(unique, 0)
    for a, b in zip(unique, unique[1:], strict=False):
        shared = _common_prefix(a, b)
        prefix[a], prefix[b] = max(prefix[a], shared), max(prefix[b], shared)
    backwards = sorted(unique, key=lambda n: n[::-1])
    for a, b in zip(backwards, backwards[1:], strict=False):
        shared = _common_prefix(a[::-1], b[::-1])
        suffix[a], suffix[b] = max(suffix[a], shared), max(suffix[b], shared)
    return {name: (prefix[name], suffix[name]) for name in unique}


def shorten(name: str, width: int, others: Sequence[str] = ()) -> str:
    """``name`` in at most ``width`` characters, cut from the middle, keeping the part that differs
    from ``others`` (the names it is listed with) whole when it fits."""
    if width < 1:
        return ""
    overlap = _overlaps([name, *others])[name] if others else None
    return _shorten(name, width, overlap)


def _shorten(name: str, width: int, overlap: tuple[int, int] | None) -> str:
    """``shorten`` with the shared prefix and suffix lengths known (None: no other names)."""
    if len(name) <= width:
        return name
    if width < 3:
        return name[: max(width - 1, 0)] + ELLIPSIS
    keep = width - 1
    cut = len(name) - keep
    start, end = _distinct_span(name, *overlap) if overlap else (len(name), len(name))
    middle = (keep + 1) // 2
    # where the one cut may go without touching the distinguishing part: the middle, just before
    # that part, or just after it; the most balanced of these keeps the most context at both ends
    heads = [head for head, fits in ((middle, middle >= end or middle + cut <= start),
                                     (start - cut, cut < start), (end, end + cut <= len(name))) if fits]
    if heads:
        head = max(heads, key=lambda h: (min(h, keep - h), h == middle))
        return name[:head] + ELLIPSIS + name[head + cut:]
    span = end - start
    if span == len(name):  # nothing in common with the others: an even cut
        return name[:middle] + ELLIPSIS + name[middle + cut:]
    if span + 2 <= width:  # both ends cut, the distinguishing part whole in between
        room = width - 2 - span
        left = min(start, (room + 1) // 2)
        right = room - left
        return name[:left] + ELLIPSIS + name[start:end] + ELLIPSIS + (name[len(name) - right:] if right else "")
    return ELLIPSIS + name[start:start + width - 2] + ELLIPSIS


def clip(text: str, width: int) -> str:
    """Free text (dataset specs with options) cut at the end: its beginning says what it is."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def shorten_all(names: Sequence[str], width: int) -> dict[str, str]:
    """Every name shortened to ``width`` against the others, so equal-looking results are avoided."""
    if width < 1:
        return dict.fromkeys(names, "")
    overlaps = _overlaps(names) if len(set(names)) > 1 else {}
    return {name: _shorten(name, width, overlaps.get(name)) for name in names}


def percent(value: float | None, digits: int = 1, missing: str = "—") -> str:
    """Accuracy and other fractions in [0, 1] as a percentage: the one unit every view uses."""
    return missing if value is None else f"{100 * value:.{digits}f}%"


def csv_number(value: float | int | None) -> str:
    """A number as CSV text without float32 noise (0.7009999752044678 -> 0.701): 7 significant digits,
    which is all a float32 holds; integers stay exact."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if number != number:
        return "nan"
    if number in (float("inf"), float("-inf")):
        return "inf" if number > 0 else "-inf"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(float(f"{number:.7g}"))


#: a column of at least this priority is never dropped (the name that identifies a row)
KEEP = 100


@dataclass(frozen=True)
class Column:
    """A table column for ``fit_columns``. Lower ``priority`` is dropped first; ``KEEP`` or more is
    never dropped. ``shrink`` columns (names, free text) give up width down to ``min_width`` before
    any column is dropped, further only when nothing is left to drop; ``middle`` says names are cut
    from the middle (``shorten``), otherwise text is cut at its end (``clip``)."""

    header: str
    cells: tuple[str, ...]
    priority: int
    shrink: bool = False
    min_width: int = 8
    middle: bool = True

    @property
    def natural(self) -> int:
        return max([len(self.header), *(len(cell) for cell in self.cells)])

    def fitted_cells(self, width: int) -> list[str]:
        """The cells in ``width`` characters: names shortened against each other, free text clipped."""
        if not self.shrink:
            return list(self.cells)
        if self.middle:
            short = shorten_all(sorted(set(self.cells)), width)
            return [short[cell] for cell in self.cells]
        return [clip(cell, width) for cell in self.cells]


def fit_columns(columns: Sequence[Column], width: int, gap: int = 2) -> list[tuple[Column, int]]:
    """The columns that fit one line of ``width`` characters, each with its width, in their order.

    Shrinkable columns first give up width down to their ``min_width``; then the lowest-priority
    columns are dropped until the rest fit; the room left goes back to the shrinkable columns
    (highest priority first). Cells are never wrapped.
    """
    kept = list(columns)
    while True:
        widths = [min(c.natural, c.min_width) if c.shrink else c.natural for c in kept]
        total = sum(widths) + gap * max(len(kept) - 1, 0)
        droppable = [c for c in kept if c.priority < KEEP]
        if total <= width or not droppable:
            break
        kept.remove(min(droppable, key=lambda c: c.priority))
    room = width - total
    for index in sorted(range(len(kept)), key=lambda i: -kept[i].priority):
        column = kept[index]
        if not column.shrink:
            continue
        if room >= 0:
            grow = min(room, column.natural - widths[index])
        else:  # nothing left to drop: shrink below the comfortable width, never below the header
            grow = max(room, len(column.header) - widths[index])
        widths[index] += grow
        room -= grow
    return list(zip(kept, widths, strict=True))
