"""The checkpoint table: one row per checkpoint of the store, readable or not."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from engine.api.checkpoints import CheckpointMeta, UnreadableCheckpoint
from engine.api.results import TapInfo
from tui import format as fmt

COLUMNS = ("name", "arch", "params", "dataset", "role", "method", "teacher", "acc", "created")


@dataclass(frozen=True)
class CheckpointRow:
    """A checkpoint as listed: its metadata, or why its metadata cannot be read."""

    name: str
    meta: CheckpointMeta | None = None
    problem: str | None = None

    @property
    def readable(self) -> bool:
        return self.meta is not None

    def cells(self) -> tuple[str, ...]:
        m = self.meta
        if m is None:
            return (self.name, "unreadable", *("—" for _ in COLUMNS[2:]))
        return (m.name, m.arch, fmt.params(m.params), fmt.clip(m.dataset or "—", 20), m.role, m.method or "—",
                m.teacher or "—", fmt.percent(m.accuracy), fmt.created(m.created))


def checkpoint_rows(metas: list[CheckpointMeta], unreadable: list[UnreadableCheckpoint]) -> list[CheckpointRow]:
    """Every checkpoint by name; unreadable ones sit among the others, marked."""
    rows = [CheckpointRow(m.name, meta=m) for m in metas]
    rows += [CheckpointRow(u.name, problem=u.reason) for u in unreadable]
    return sorted(rows, key=lambda row: row.name)


def inspect_table(meta: CheckpointMeta, taps: list[TapInfo] | None) -> Table:
    """Metadata, provenance and (once asked for with enter) the model's feature taps."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("name", meta.name),
        ("model", f"{meta.arch} ×{meta.width:g}, {meta.num_classes} classes, "
                  f"{meta.in_channels}x{meta.input_size}x{meta.input_size}, {fmt.params(meta.params)} params"),
        ("normalise", f"mean {tuple(round(v, 4) for v in meta.mean)}  std {tuple(round(v, 4) for v in meta.std)}"),
        ("trained", f"{meta.role}" + (f", method {meta.method}" if meta.method else "")
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
        rows.append(("taps", "[dim]enter or t lists the feature taps[/dim]"))
    else:
        rows.append(("taps", "  ".join(f"{t.name} {t.channels}×{t.height}×{t.width}" for t in taps)))
    for key, value in rows:
        table.add_row(key, value)
    return table


def problem_table(row: CheckpointRow) -> Table:
    """What the inspect pane says of a checkpoint whose metadata cannot be read."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("name", row.name)
    table.add_row("[red]unreadable[/red]", row.problem or "")
    table.add_row("", "[dim]fix or replace its .json file; the other checkpoints are unaffected[/dim]")
    return table
