"""Rich tables that keep every row on one line of the terminal (engine.api.display's fitting policy).

Columns a narrow terminal cannot hold are dropped (least useful first) and names are
shortened from the middle, rather than cells being wrapped over several lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engine.api.checkpoints import CheckpointMeta
from engine.api.display import KEEP, Column, fit_columns, group_twins, percent

T = TypeVar("T")

GAP = 3  # between columns: one space of padding each side and the (blank) column rule
RIGHT = frozenset({"params", "acc", "last", "epochs", "best", "n", "students", "val acc", "test acc", "last epoch",
                   "vs si"})


def fitted_table(title: str, columns: Sequence[Column], width: int, caption: str | None = None) -> Any:
    """A borderless table of ``columns`` fitted to ``width``; shrinkable columns are shortened
    against their own cells so the part that tells names apart stays visible."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    fitted = fit_columns(columns, width, gap=GAP)
    # plain text, never markup: names, paths and dataset specs come from files anyone may have written
    table = Table(title=Text(title), caption=Text(caption) if caption else None, box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False, title_justify="left", caption_justify="left")
    for column, size in fitted:
        table.add_column(column.header, justify="right" if column.header in RIGHT else "left", no_wrap=True,
                         overflow="ellipsis", width=size)
    cells = [column.fitted_cells(size) for column, size in fitted]
    for row in zip(*cells, strict=True):
        table.add_row(*(Text(cell) for cell in row))
    return table


def print_listing(plural: str, singular: str, directory: Path, entries: Sequence[T],
                  unreadable: list[tuple[str, Path, str]], *, as_json: bool, summary: Callable[[T], dict[str, Any]],
                  columns: Callable[[Sequence[T]], list[Column]],
                  notes: Callable[[Sequence[T]], Iterable[str]] = lambda entries: ()) -> int:
    """What a ``list`` command prints: JSON of the entries and of the unreadable ones (for scripts),
    else a table fitted to the terminal, ``notes`` under it and each unreadable entry named on
    stderr. The exit status is 1 when any entry could not be read."""
    from engine.cli.output import console, print_json, print_unreadable, unreadable_json

    if as_json:
        print_json({plural: [summary(e) for e in entries], "unreadable": unreadable_json(unreadable)})
        return 1 if unreadable else 0
    out = console()
    if not entries:
        out.print(f"no readable {plural} in {directory}", highlight=False)
    else:
        out.print(fitted_table(f"{plural} in {directory}", columns(entries), out.width))
        for note in notes(entries):
            out.print(note, highlight=False, soft_wrap=True)
    print_unreadable(singular, unreadable)
    return 1 if unreadable else 0


def arch_label(meta: CheckpointMeta) -> str:
    if meta.model_def:
        return f"{meta.arch} (model-def)"
    return meta.arch if meta.width == 1 else f"{meta.arch} x{meta.width:g}"


def checkpoint_table(directory: Path, metas: list[CheckpointMeta], width: int) -> Any:
    """One line per checkpoint group: the best epoch, with its ``-last`` twin's accuracy in ``last``."""
    groups = group_twins(metas, key=lambda m: m.name)
    best = [g.best for g in groups]

    def col(header: str, values: list[str], priority: int, shrink: bool = False, minimum: int = 8,
            middle: bool = True) -> Column:
        return Column(header, tuple(values), priority, shrink, minimum, middle)

    columns = [
        col("name", [m.name for m in best], KEEP, shrink=True, minimum=20),
        col("arch", [arch_label(m) for m in best], 4),
        col("params", [f"{m.params:,}" if m.params else "-" for m in best], 2),
        col("dataset", [m.dataset or "-" for m in best], 3, shrink=True, minimum=12, middle=False),
        col("role", [m.role for m in best], 5),
        col("method", [m.method_label or "-" for m in best], 8),
        col("teacher", [m.teacher or "-" for m in best], 6, shrink=True, minimum=14),
        col("acc", [percent(m.accuracy, 2, "-") for m in best], 10),
        col("last", [percent(g.last.accuracy, 2, "-") if g.last else "" for g in groups], 7),
        col("created", [m.created.replace("T", " ")[5:16] or "-" for m in best], 1),
    ]
    if not any(g.last for g in groups):
        columns = [c for c in columns if c.header != "last"]
    caption = "last: the final epoch's accuracy (checkpoint NAME-last)" if any(g.last for g in groups) else None
    return fitted_table(f"checkpoints in {directory}", columns, width, caption)
