"""The checkpoint table: one row per checkpoint of the store, readable or not."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from engine.api.checkpoints import CheckpointMeta, UnreadableCheckpoint
from engine.api.display import LAST_SUFFIX, group_twins
from engine.api.results import TapInfo
from tui import format as fmt

COLUMNS = ("name", "acc", "last", "role", "method", "teacher", "arch", "params", "dataset", "created")
#: how a -last twin shown under its best checkpoint is named in the table
TWIN_LABEL = f"  └ {LAST_SUFFIX}"


@dataclass(frozen=True)
class CheckpointRow:
    """A checkpoint as listed: its metadata, or why its metadata cannot be read. ``last`` is the
    folded ``-last`` twin (the final epoch); ``twin`` marks a twin shown on its own row."""

    name: str
    meta: CheckpointMeta | None = None
    problem: str | None = None
    last: CheckpointMeta | None = None
    twin: bool = False

    @property
    def readable(self) -> bool:
        return self.meta is not None

    def cells(self) -> tuple[str, ...]:
        m = self.meta
        label = TWIN_LABEL if self.twin else self.name
        if m is None:
            return (label, "unreadable", *("—" for _ in COLUMNS[2:]))
        return (label, fmt.percent(m.accuracy), fmt.percent(self.last.accuracy) if self.last else "",
                m.role, m.method_label or "—", m.teacher or "—", m.arch if m.width == 1 else f"{m.arch} ×{m.width:g}",
                fmt.params(m.params), fmt.clip(m.dataset or "—", 24), fmt.created(m.created))


def checkpoint_rows(metas: list[CheckpointMeta], unreadable: list[UnreadableCheckpoint],
                    show_twins: bool = False) -> list[CheckpointRow]:
    """One row per checkpoint group, in natural order (vgg8 before vgg16): the best epoch, its
    ``-last`` twin folded in (its accuracy in ``last``; its own row under it with ``show_twins``).
    Unreadable checkpoints sit among the others, marked."""
    entries: list[CheckpointMeta | UnreadableCheckpoint] = [*metas, *unreadable]
    rows: list[CheckpointRow] = []
    for group in group_twins(entries, key=lambda entry: entry.name):
        best, last = group.best, group.last
        last_meta = last if isinstance(last, CheckpointMeta) else None
        rows.append(CheckpointRow(best.name, meta=best, last=last_meta) if isinstance(best, CheckpointMeta)
                    else CheckpointRow(best.name, problem=best.reason))
        if last is not None and (show_twins or isinstance(last, UnreadableCheckpoint)):
            rows.append(CheckpointRow(last.name, meta=last, twin=True) if isinstance(last, CheckpointMeta)
                        else CheckpointRow(last.name, problem=last.reason, twin=True))
    return rows


def inspect_table(meta: CheckpointMeta, taps: list[TapInfo] | None) -> Table:
    """Metadata, provenance and (once asked for with enter) the model's feature taps."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("name", meta.name),
        ("model", f"{meta.arch} ×{meta.width:g}, {meta.num_classes} classes, "
                  f"{meta.in_channels}x{meta.input_size}x{meta.input_size}, {fmt.params(meta.params)} params"),
        ("normalise", f"mean {tuple(round(v, 4) for v in meta.mean)}  std {tuple(round(v, 4) for v in meta.std)}"),
        ("trained", f"{meta.role}" + (f", method {meta.method_label}" if meta.method else "")
                    + (f", teacher {meta.teacher}" if meta.teacher else "")
                    + (f", recipe {meta.recipe}" if meta.recipe else "")
                    + (f", {meta.epochs} epochs" if meta.epochs else "")
                    + (f", run {meta.run_id}" if meta.run_id else "")),
        ("accuracy", fmt.percent(meta.accuracy)),
        ("dataset", meta.dataset or "—"),
    ]
    if meta.source_path:
        rows.append(("source", f"{meta.source_path}  sha256 {(meta.source_sha256 or '')[:16]}"))
    if meta.model_def:
        rows.append(("model def", meta.model_def))
    if taps is None:
        rows.append(("taps", Text.assemble(("enter or t lists the feature taps", "dim"))))
    else:
        rows.append(("taps", "  ".join(f"{t.name} {t.channels}×{t.height}×{t.width}" for t in taps)))
    for key, value in rows:
        table.add_row(key, Text(value) if isinstance(value, str) else value)  # file text, never markup
    return table


def problem_table(row: CheckpointRow) -> Table:
    """What the inspect pane says of a checkpoint whose metadata cannot be read."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("name", Text(row.name))
    table.add_row("[red]unreadable[/red]", Text(row.problem or ""))
    table.add_row("", "[dim]fix or replace its .json file; the other checkpoints are unaffected[/dim]")
    return table
