"""One naming and display policy for every front-end (CLI tables, TUI lists, reports, CSVs). Torch-free.

Checkpoint names are long and mostly alike (``resnet8x4-fitnet-shapes-demo-s0``): lists sort
them naturally (vgg8 before vgg16), fold each ``-last`` twin under its best checkpoint, and
shorten them from the middle while keeping the part that tells them apart. Accuracy is a
percentage everywhere; numbers in CSVs carry no float32 noise.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
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


#: the end of a name that tells copies apart (``NAME-last``, ``NAME-2``): kept when a name is shortened alone
_COPY_MARKER = re.compile(r"(?:[-_.](?:last|\d+))+$")

Span = tuple[int, int]


@dataclass(frozen=True)
class _Parts:
    """Where a name differs from the names listed with it: ``tokens`` in whole tokens (what to keep
    when there is room), ``exact`` to the character (what to keep when there is not)."""

    tokens: list[Span]
    exact: list[Span]


def _boundary(name: str, i: int) -> bool:
    """Whether position ``i`` of ``name`` falls between tokens."""
    return i in (0, len(name)) or name[i - 1] in _SEPARATORS or name[i] in _SEPARATORS


def _parts(name: str, prefix_pair: Span, suffix_pair: Span, tokens: bool) -> list[Span]:
    """The spans of ``name`` that tell it apart, from (shared prefix, shared suffix) with the name
    sharing its longest prefix and with the name sharing its longest suffix.

    Every other name shares less at both ends, so where the two differing spans overlap, their overlap
    is the one part to keep (``kd`` in ``r-kd-s`` next to ``r-at-s``); where they do not
    (``r-kd-s-last`` next to ``r-kd-s`` and ``r-at-s-last``) both are kept. An empty span (``r-kd-s``
    next to ``r-kd-s-last``) says the name ends there: its end is kept."""
    (prefix, suffix_there), (prefix_there, suffix) = prefix_pair, suffix_pair
    start, end = prefix, len(name) - suffix
    spans = [(start, end)] if start < end else [(prefix_there, end), (start, len(name) - suffix_there)]
    return _merged(_nonempty(name, span, tokens) for span in spans)


def _nonempty(name: str, span: Span, tokens: bool) -> Span:
    """An empty span (where the name stops and another goes on) as the character, or with
    ``tokens`` the token, on either side of it."""
    start, end = span
    if start < end:
        return span
    start, end = max(start - 1, 0), min(end + 1, len(name))
    while tokens and start > 0 and not _boundary(name, start):
        start -= 1
    while tokens and end < len(name) and not _boundary(name, end):
        end += 1
    return start, end


def _token_at(name: str, i: int) -> Span:
    """The token character ``i`` of ``name`` belongs to (a separator alone)."""
    start, end = i, i + 1
    while start > 0 and not _boundary(name, start):
        start -= 1
    while end < len(name) and not _boundary(name, end):
        end += 1
    return start, end


def _differing_parts(names: Sequence[str]) -> dict[str, _Parts]:
    """Per name, the parts that tell it apart from the other names. The name sharing the longest
    prefix is a neighbour in sorted order (and likewise for suffixes in order of the reversed names),
    so this takes O(n log n), not O(n^2): class lists may hold thousands of names."""
    unique = sorted(set(names))
    backwards = sorted(unique, key=lambda n: n[::-1])

    def shared(a: str, b: str, tokens: bool) -> Span:
        """Shared (prefix, suffix) of two names; ``tokens``: whole tokens of both only (``d`` shared
        by ``striped-d`` and ``solid`` is no likeness)."""
        prefix = _common_prefix(a, b)
        while tokens and not (_boundary(a, prefix) and _boundary(b, prefix)):
            prefix -= 1
        suffix = min(_common_prefix(a[::-1], b[::-1]), min(len(a), len(b)) - prefix)
        while tokens and not (_boundary(a, len(a) - suffix) and _boundary(b, len(b) - suffix)):
            suffix -= 1
        return prefix, suffix

    def parts(tokens: bool) -> dict[str, list[Span]]:
        by_prefix: dict[str, Span] = dict.fromkeys(unique, (0, 0))  # with the longest-prefix partner
        by_suffix: dict[str, Span] = dict.fromkeys(unique, (0, 0))  # with the longest-suffix partner
        for a, b in zip(unique, unique[1:], strict=False):
            pair = shared(a, b, tokens)
            by_prefix[a], by_prefix[b] = max(by_prefix[a], pair), max(by_prefix[b], pair)
        for a, b in zip(backwards, backwards[1:], strict=False):
            pair = shared(a, b, tokens)
            for name in (a, b):
                by_suffix[name] = max(by_suffix[name], pair, key=lambda p: (p[1], p[0]))
        return {name: _parts(name, by_prefix[name], by_suffix[name], tokens) for name in unique}

    tokens, exact = parts(True), parts(False)
    return {name: _Parts(tokens[name], exact[name]) for name in unique}


def _merged(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def shorten(name: str, width: int, others: Sequence[str] = ()) -> str:
    """``name`` in at most ``width`` characters, cut from the middle, keeping the part that differs
    from ``others`` (the names it is listed with) whole when it fits; alone, its ``-last``/``-2`` end."""
    if width < 1:
        return ""
    parts = _differing_parts([name, *others])[name] if set(others) - {name} else None
    return _shorten(name, width, parts)


def _gaps(length: int, keep: list[Span]) -> list[Span]:
    """The runs of [0, length) outside the sorted, disjoint ``keep``."""
    edges = [0, *(x for span in keep for x in span), length]
    return [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if a < b]


def _one_cut(name: str, width: int, keep: list[Span]) -> str | None:
    """``name`` with one run of characters outside ``keep`` replaced by the ellipsis: the most
    balanced such cut, which keeps the most context at both ends (None: no gap is long enough)."""
    visible = width - 1
    cut = len(name) - visible
    middle = (visible + 1) // 2
    heads = [min(max(middle, start), end - cut) for start, end in _gaps(len(name), keep) if end - start >= cut]
    if not heads:
        return None
    head = max(heads, key=lambda h: (min(h, visible - h), h == middle))
    return name[:head] + ELLIPSIS + name[head + cut:]


def _cut_around(name: str, width: int, keep: list[Span]) -> str | None:
    """``name`` cut in several places: every span of ``keep`` whole, an ellipsis for each run left
    out, the room that remains given to context at both ends (None: the spans alone do not fit)."""
    gaps = _gaps(len(name), keep)
    room = width - sum(end - start for start, end in keep) - len(gaps)
    if room < 0:
        return None
    lead = max(keep[0][0] - 1, 0)  # context a leading gap can give and still leave a character to cut
    trail = max(len(name) - keep[-1][1] - 1, 0)
    left = min(lead, max((room + 1) // 2, room - trail))
    right = min(trail, room - left)
    context = [(0, left), (len(name) - right, len(name))]
    text, position = "", 0
    for start, end in sorted([*keep, *(span for span in context if span[0] < span[1])]):
        text += (ELLIPSIS if start > position else "") + name[start:end]
        position = end
    return text + (ELLIPSIS if position < len(name) else "")


def _shorten(name: str, width: int, parts: _Parts | None) -> str:
    """``shorten`` with the differing parts known (None: no other names)."""
    if len(name) <= width:
        return name
    if width < 3:
        return name[: max(width - 1, 0)] + ELLIPSIS
    if parts is None:
        marker = _COPY_MARKER.search(name)
        parts = _Parts([(marker.start(), len(name))], [(marker.start(), len(name))]) if marker else _Parts([], [])
    # whole tokens if they fit, else the differing characters alone (one cut if it can, else several);
    # else where each part begins and ends (its first character tells it from the name sharing the
    # prefix, its last from the one sharing the suffix), as tokens and then alone, in one cut
    for keep in (parts.tokens, parts.exact):
        text = _one_cut(name, width, keep) or _cut_around(name, width, keep)
        if text is not None:
            return text
    ends = [i for start, end in parts.exact for i in (start, end - 1)]
    for keep in (_merged(_token_at(name, i) for i in ends), _merged((i, i + 1) for i in ends)):
        text = _one_cut(name, width, keep)
        if text is not None:
            return text
    start, end = parts.exact[-1]  # room for less than the differing characters: as many as fit of the last
    if end == len(name):
        return ELLIPSIS + name[len(name) - width + 1:]
    return ELLIPSIS + name[start:start + width - 2] + ELLIPSIS


def clip(text: str, width: int) -> str:
    """Free text (dataset specs with options) cut at the end: its beginning says what it is."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def shorten_all(names: Sequence[str], width: int) -> dict[str, str]:
    """Every name shortened to ``width`` against the others, so equal-looking results are avoided."""
    if width < 1:
        return dict.fromkeys(names, "")
    parts = _differing_parts(names) if len(set(names)) > 1 else {}
    short = {name: _shorten(name, width, parts.get(name)) for name in names}
    return _apart(short, width, parts)


def _apart(short: dict[str, str], width: int, parts: dict[str, _Parts]) -> dict[str, str]:
    """Names that still look alike after shortening (a repeated token: ``demo-s0`` and ``demo-s0-s0``
    both ``de…s0``) take, all but one, the first other cut (``_cuts``) that no name shows."""
    shown = Counter(short.values())
    for name, text in short.items():
        if shown[text] < 2 or len(name) <= width:
            continue
        candidate = next((c for c in _cuts(name, width, parts[name].exact if name in parts else []) if c not in shown),
                         None)
        if candidate is not None:
            shown[text] -= 1
            shown[candidate] += 1
            short[name] = candidate
    return short


def _cuts(name: str, width: int, exact: list[Span]) -> Iterator[str]:
    """Every single cut of ``name`` to ``width``: first those that spare its differing characters,
    each group from the most balanced."""
    visible = width - 1
    cut = len(name) - visible

    def preference(head: int) -> tuple[bool, int]:
        spared = all(head + cut <= start or head >= end for start, end in exact)
        return not spared, -min(head, visible - head)

    for head in sorted(range(visible + 1), key=preference):
        yield name[:head] + ELLIPSIS + name[head + cut:]


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
