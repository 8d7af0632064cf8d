"""Checkpoints: the workspace's store as a table, with import, inspect, rename and delete.

A checkpoint whose metadata cannot be read is listed, marked unreadable, with the reason."""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from engine.api.checkpoints import CheckpointMeta, UnreadableCheckpoint, scan_checkpoints
from engine.api.results import ModelTaps, TapInfo
from engine.api.specs import DeleteCheckpointSpec, DemoSpec, ImportSpec, RenameCheckpointSpec, TapsSpec, TrainSpec
from engine.events import Failed, Finished, JobEvent
from tui.jobboard import JobRecord
from tui.rows.checkpoints import COLUMNS, CheckpointRow, checkpoint_rows, inspect_table, problem_table
from tui.screens.base import KdcamScreen

#: jobs that change the store: the table is re-read when one finishes
STORE_SPECS = (ImportSpec, RenameCheckpointSpec, DeleteCheckpointSpec, TrainSpec, DemoSpec)


class CheckpointsScreen(KdcamScreen):
    SCREEN_TITLE = "Checkpoints"
    BINDINGS = [
        Binding("i", "import", "Import"),
        Binding("t", "inspect", "Taps"),
        Binding("n", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("l", "toggle_twins", "-last twins"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, CheckpointRow] = {}
        self.taps: dict[str, list[TapInfo]] = {}
        self._taps_jobs: dict[str, str] = {}  # job id -> checkpoint name
        self.show_twins = False  # each NAME-last is folded into NAME's row until l unfolds them
        self._listed: tuple[list[CheckpointMeta], list[UnreadableCheckpoint]] = ([], [])

    @property
    def metas(self) -> dict[str, CheckpointMeta]:
        return {name: row.meta for name, row in self.rows.items() if row.meta is not None}

    def compose_body(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="checkpoints", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        table.add_columns(*COLUMNS)
        yield table
        with VerticalScroll(id="inspect"):
            yield Static("", id="inspect-body")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    @work(thread=True, exclusive=True, group="list", exit_on_error=False)
    def action_reload(self) -> None:
        """Read the store's JSON files off the UI thread (a network disk may be slow)."""
        metas, unreadable = scan_checkpoints(self.kdcam.workspace.checkpoints)
        self.app.call_from_thread(self._show, metas, unreadable)

    def _show(self, metas: list[CheckpointMeta], unreadable: list[UnreadableCheckpoint]) -> None:
        table = self.query_one("#checkpoints", DataTable)
        current = self.selected_name()
        self._listed = (metas, unreadable)
        rows = checkpoint_rows(metas, unreadable, self.show_twins)
        self.rows = {row.name: row for row in rows}
        table.clear()
        for row in rows:
            table.add_row(*(escape(cell) for cell in row.cells()), key=row.name)  # file text, never markup
        if current in self.rows:
            table.move_cursor(row=table.get_row_index(current))
        self._show_inspect()

    def action_toggle_twins(self) -> None:
        """Unfold (or fold again) every NAME-last twin: its own row, to inspect, rename or delete it."""
        self.show_twins = not self.show_twins
        self._show(*self._listed)
        self.notify("-last twins shown under their checkpoints" if self.show_twins else
                    "-last twins folded into the last column")

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
        row = self.rows.get(name) if name is not None else None
        if row is None:
            body.update("No checkpoints in this workspace yet: [b]i[/b] imports one, "
                        "the Train screen ([b]2[/b]) makes some.")
        elif row.meta is None:
            body.update(problem_table(row))
        else:
            body.update(inspect_table(row.meta, self.taps.get(row.name)))

    def action_inspect(self) -> None:
        name = self.selected_name()
        if name is None or name not in self.metas:
            return
        if name not in self.taps and name not in self._taps_jobs.values():
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
            self.taps[self._taps_jobs.pop(event.job_id)] = taps_of(event.result)
            self._show_inspect()
        elif isinstance(record.spec, STORE_SPECS):
            self.action_reload()


def taps_of(result: object) -> list[TapInfo]:
    """The taps a finished taps job reports."""
    if isinstance(result, ModelTaps):
        return list(result.taps)
    return [t for t in result if isinstance(t, TapInfo)] if isinstance(result, list | tuple) else []
