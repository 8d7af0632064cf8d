"""Checkpoints: the workspace's store as a table, with import, inspect, rename and delete."""

from __future__ import annotations

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from engine.checkpoints.meta import CheckpointMeta, list_checkpoints
from engine.events import Failed, Finished, JobEvent
from tui import format as fmt
from tui.jobboard import JobRecord
from tui.screens.base import KdcamScreen
from tui.store_jobs import DeleteCheckpointSpec, RenameCheckpointSpec, TapsSpec

COLUMNS = ("name", "arch", "params", "dataset", "role", "method", "teacher", "acc", "created")
STORE_KINDS = ("import", "rename", "delete", "train", "demo")


class CheckpointsScreen(KdcamScreen):
    SCREEN_TITLE = "Checkpoints"
    BINDINGS = [
        Binding("i", "import", "Import"),
        Binding("t", "inspect", "Taps"),
        Binding("n", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.metas: dict[str, CheckpointMeta] = {}
        self.taps: dict[str, list[tuple[str, int, int, int]]] = {}
        self._taps_jobs: dict[str, str] = {}  # job id -> checkpoint name

    def compose_body(self) -> ComposeResult:
        table: DataTable = DataTable(id="checkpoints", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        with VerticalScroll(id="inspect"):
            yield Static("", id="inspect-body")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    @work(thread=True, exclusive=True, group="list")
    def action_reload(self) -> None:
        """Read the store's JSON files off the UI thread (a network disk may be slow)."""
        metas = list_checkpoints(self.kdcam.workspace.checkpoints)
        self.app.call_from_thread(self._show, metas)

    def _show(self, metas: list[CheckpointMeta]) -> None:
        table = self.query_one("#checkpoints", DataTable)
        current = self.selected_name()
        self.metas = {m.name: m for m in metas}
        table.clear()
        for m in metas:
            table.add_row(
                m.name, m.arch, fmt.params(m.params), fmt.clip(m.dataset or "—", 20), m.role, m.method or "—",
                m.teacher or "—", fmt.percent(m.accuracy), fmt.created(m.created), key=m.name,
            )
        if current in self.metas:
            table.move_cursor(row=table.get_row_index(current))
        self._show_inspect()

    def selected_name(self) -> str | None:
        table = self.query_one("#checkpoints", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_highlighted(self) -> None:
        self._show_inspect()

    def on_data_table_row_selected(self) -> None:
        self.action_inspect()

    def _show_inspect(self) -> None:
        body = self.query_one("#inspect-body", Static)
        name = self.selected_name()
        if name is None or name not in self.metas:
            body.update("No checkpoints in this workspace yet: [b]i[/b] imports one, "
                        "the Train screen ([b]2[/b]) makes some.")
            return
        body.update(inspect_table(self.metas[name], self.taps.get(name)))

    def action_inspect(self) -> None:
        name = self.selected_name()
        if name and name not in self.taps and name not in self._taps_jobs.values():
            record = self.kdcam.submit(TapsSpec(str(self.kdcam.workspace.root), name))
            self._taps_jobs[record.job_id] = name

    def action_import(self) -> None:
        from tui.screens.dialogs import ImportDialog  # dialogs load when first opened, not before the first frame

        def imported(name: str | None) -> None:
            if name:
                self.notify(f"imported {name}")
            self.action_reload()

        self.app.push_screen(ImportDialog(), imported)

    def action_rename(self) -> None:
        from tui.screens.dialogs import NameDialog

        name = self.selected_name()
        if name is None:
            return

        def renamed(new_name: str | None) -> None:
            if new_name and new_name != name:
                self.kdcam.submit(RenameCheckpointSpec(str(self.kdcam.workspace.root), name, new_name))

        self.app.push_screen(NameDialog(f"Rename checkpoint {name} to:", name), renamed)

    def action_delete(self) -> None:
        from tui.screens.dialogs import ConfirmDialog

        name = self.selected_name()
        if name is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.kdcam.submit(DeleteCheckpointSpec(str(self.kdcam.workspace.root), name))

        self.app.push_screen(ConfirmDialog(f"Delete checkpoint [b]{name}[/b] (weights and metadata)?"), confirmed)

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if isinstance(event, Failed):  # e.g. untrusted model code: the app shows why; enter asks again
            self._taps_jobs.pop(event.job_id, None)
        if not isinstance(event, Finished) or record is None:
            return
        if event.job_id in self._taps_jobs:
            self.taps[self._taps_jobs.pop(event.job_id)] = list(event.result)
            self._show_inspect()
        elif record.kind in STORE_KINDS:
            self.action_reload()


def inspect_table(meta: CheckpointMeta, taps: list[tuple[str, int, int, int]] | None) -> Table:
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
        rows.append(("taps", "  ".join(f"{n} {c}×{h}×{w}" for n, c, h, w in taps)))
    for key, value in rows:
        table.add_row(key, value)
    return table
