"""Browser: the analysed images one by one — the original and every model's CAM side by
side (inline images; half-block/Unicode where the terminal has no graphics), each card
labelled with the model's prediction, coloured right/wrong, and the image's metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, ScrollableContainer, Vertical
from textual.reactive import var
from textual.widgets import DataTable, Label, Static

from engine.api.analyses import AnalysisInfo, UnreadableAnalysis, scan_analyses
from engine.api.bands import band as band_of
from engine.api.bands import band_style
from engine.api.catalogue import BANDED_METRICS
from engine.api.display import shorten_all
from engine.api.specs import AnalyzeSpec, DemoSpec
from engine.errors import KdcamError
from engine.events import Finished, JobEvent
from tui.heatmap import Card, panel_png, picture
from tui.jobboard import JobRecord
from tui.rows.browser import (
    CARD_WIDTH,
    METRIC_COLUMNS,
    PICTURE_ROWS,
    Filters,
    LoadedAnalysis,
    LruCache,
    PanelLayout,
    load_analysis,
    other_target,
    panel_layout,
    siblings,
    target_label,
)
from tui.screens.base import KdcamScreen
from tui.widgets.picture import CardPicture
from tui.widgets.problems import Problems

CARD_CACHE_SIZE = 256  # a few dozen images' cards: tiny pictures, enough to scroll back and forth
#: jobs that write analyses: the browser re-reads when one finishes
ANALYSIS_SPECS = (AnalyzeSpec, DemoSpec)


class CamCard(Vertical):
    """A picture with its title and prediction caption."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.card: Card | None = None
        self.title = ""

    def compose(self) -> ComposeResult:
        yield CardPicture(classes="cam-image")
        yield Static("", classes="cam-caption")

    def on_mount(self) -> None:
        if self.card is not None:  # shown before its children were mounted: draw it now
            self._draw(self.card)

    def show(self, card: Card, title: str) -> None:
        """Draw ``card`` under ``title`` (its model's name as the card's width allows)."""
        if card is self.card:  # e.g. the original while toggling overlay: nothing to redraw
            return
        self.card, self.title = card, title
        if self.is_mounted and self.query(CardPicture):
            self._draw(card)

    def _draw(self, card: Card) -> None:
        self.query_one(CardPicture).picture = card.picture
        style = "" if card.correct is None else ("green" if card.correct else "red")
        text = Text(self.title + "\n", style="bold")
        text.append(card.caption[:40], style=style)
        self.query_one(".cam-caption", Static).update(text, layout=False)  # fixed size


#: characters of a class name in the image list (the list is 39 cells: at 80 and 120 columns the
#: cards beside it still get 2 and 4 columns)
CLASS_WIDTH = 16
#: characters of a line of the filters above the list (its 39 cells less the border)
FILTERS_WIDTH = 38
#: characters of a value in the metrics table under the cards ("-0.577", "18.248")
VALUE_WIDTH = 7


def metric_widths(students: Sequence[str]) -> list[int]:
    """Column widths of the metrics table: fixed, so the table keeps its size from image to image;
    students named as on their cards."""
    return [max(len("student"), *(min(len(s), CARD_WIDTH) for s in students)),
            *(max(len(title), VALUE_WIDTH) for _, title in METRIC_COLUMNS)]


def metrics_width(students: Sequence[str]) -> int:
    """Cells the metrics table takes (a cell of padding before each column)."""
    return sum(width + 1 for width in metric_widths(students))


class BrowserScreen(KdcamScreen):
    SCREEN_TITLE = "Browser"
    BINDINGS = [
        Binding("j,down", "move(1)", "Next", key_display="j/↓"),
        Binding("k,up", "move(-1)", "Prev", key_display="k/↑"),
        Binding("t", "toggle_target", "Target true/pred"),
        Binding("m", "cycle_method", "CAM method"),
        Binding("o", "toggle_overlay", "Overlay/raw"),
        Binding("e", "export_panel", "Export PNG"),
        Binding("c", "cycle_class", "Class filter"),
        Binding("w", "cycle_outcome", "Who was right"),
        Binding("d", "toggle_degenerate", "Degenerate"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("left_square_bracket", "cycle_student(-1)", "Prev student", key_display="["),
        Binding("right_square_bracket", "cycle_student(1)", "Next student", key_display="]"),
        Binding("n", "page(1)", "Next models"),
        Binding("p", "page(-1)", "Prev models"),
    ]

    #: which images the list shows and in what order; changing it refills the list
    filters: var[Filters] = var(Filters, init=False)

    def __init__(self) -> None:
        super().__init__()
        self.data: LoadedAnalysis | None = None
        self.analyses: list[AnalysisInfo] = []
        self._short_classes: tuple[str | None, dict[str, str]] = (None, {})  # analysis id, name -> short
        self._short_models: dict[str, str] = {}  # card titles: model names shortened against each other
        self.cards_layout: PanelLayout | None = None  # how the cards sit beside the list, None until laid out
        self.page = 0  # which of the layout's pages of models is shown
        self.rows: list[int] = []
        self.blend = True
        self.other_target = False  # showing diagnosis maps for the other class (true <-> predicted)
        self._pending_dataset_index: int | None = None
        self._panel_pending = False
        # Built cards by (row, model, overlay, other target): moving back and forth re-uses them.
        self._cards: LruCache[tuple[int, str, bool, bool], Card] = LruCache(CARD_CACHE_SIZE)

    @property
    def student(self) -> int:
        return self.filters.student

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="image-side"):
                yield Label("", id="filters")
                table: DataTable[Any] = DataTable(id="image-list", cursor_type="row")
                table.add_columns("#", "class", "T S", "r")
                yield table
            with Vertical(id="panel"):
                yield Label("No analysis yet: Analyze (3) makes one.", id="panel-title")
                yield Problems(id="analysis-problems")
                yield Label("", id="panel-page")
                yield Container(id="panel-images")
                with ScrollableContainer(id="metrics"):
                    yield Static("", id="image-metrics")

    def on_mount(self) -> None:
        super().on_mount()
        self.reload()

    def on_screen_resume(self) -> None:
        wanted = self.kdcam.selected_analysis
        if wanted and (self.data is None or self.data.info.id != wanted):
            self.reload()

    # -- loading --------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def reload(self, analysis_id: str | None = None) -> None:
        analyses, unreadable = scan_analyses(self.kdcam.workspace.root)
        wanted = analysis_id or self.kdcam.selected_analysis
        info = next((a for a in analyses if a.id == wanted), analyses[0] if analyses else None)
        if info is None:
            self.app.call_from_thread(self._loaded, analyses, unreadable, None)
            return
        try:
            data = load_analysis(self.kdcam.workspace.root, info)
        except KdcamError as exc:
            self.app.call_from_thread(self._failed, analyses, unreadable, info, str(exc))
            return
        self.app.call_from_thread(self._loaded, analyses, unreadable, data)

    def _failed(self, analyses: list[AnalysisInfo], unreadable: list[UnreadableAnalysis], info: AnalysisInfo,
                reason: str) -> None:
        """The analysis to show cannot be opened: say why in the panel; what was shown stays."""
        self.analyses = analyses
        self.query_one("#analysis-problems", Problems).show(
            [(f"analysis {info.id}", reason), *((f"analysis {u.id}", u.reason) for u in unreadable)])
        self.call_after_refresh(self.fit_grid)  # the problems take room from the cards
        if self.data is None:
            self.query_one("#panel-title", Label).update(Text(f"analysis {info.id} cannot be shown"))
        else:
            self.notify(reason, title=f"analysis {info.id} cannot be shown", severity="error", timeout=10)

    async def _loaded(self, analyses: list[AnalysisInfo], unreadable: list[UnreadableAnalysis],
                      data: LoadedAnalysis | None) -> None:
        self.analyses = analyses
        self.query_one("#analysis-problems", Problems).show([(f"analysis {u.id}", u.reason) for u in unreadable])
        if data is None:
            if unreadable and self.data is None:
                self.query_one("#panel-title", Label).update("No readable analysis: the files below cannot be read.")
            return
        previous_model_count = len(self.data.models) if self.data else -1
        self.data = data
        self._cards.clear()
        self.kdcam.selected_analysis = data.info.id
        self.set_reactive(BrowserScreen.filters, self.filters.for_analysis(data))
        self.other_target = False
        self._short_models = shorten_all(data.models, CARD_WIDTH)  # twins differ at the end: that part stays
        # A fixed size (header + one line per student, the widest row) spares a layout pass per key.
        metrics = self.query_one("#image-metrics", Static)
        metrics.styles.height = 1 + len(data.students)
        metrics.styles.width = metrics_width(data.students)
        if len(data.models) != previous_model_count:
            self.cards_layout = None
        await self.fit_grid()
        self.set_list_columns(data)
        self.refilter()
        self.call_after_refresh(self.fit_grid)  # again once problems shown above the cards have their size

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_grid)  # once the panel has its new size

    async def fit_grid(self) -> None:
        """As many whole cards as the panel beside the list holds (``panel_layout``): the cards are
        laid out again only when that changes, the page kept where it still exists."""
        data = self.data
        if data is None:
            return
        panel = self.query_one("#panel")
        room = panel.content_size.height - sum(
            widget.outer_size.height for widget in (self.query_one("#panel-title"), self.query_one(Problems))
            if widget.display)
        layout = panel_layout(panel.content_size.width, room, len(data.models))
        # the metrics under the cards where a gap, a header and a student fit (else a lone scrollbar)
        self.query_one("#metrics").display = room - layout.height >= 3
        if layout == self.cards_layout:
            return
        container = self.query_one("#panel-images", Container)
        if self.cards_layout is None or layout.cards != self.cards_layout.cards:
            await container.remove_children()
            await container.mount_all([CamCard(classes="cam-card") for _ in range(layout.cards)])
        self.cards_layout = layout
        self.page = min(self.page, layout.pages - 1)
        container.styles.grid_size_columns = layout.columns
        container.set_class(layout.picture_rows < PICTURE_ROWS[0], "compact")
        self.query_one("#panel-page").display = layout.paged
        self.show_image()

    # -- list -------------------------------------------------------------------------------
    def set_list_columns(self, data: LoadedAnalysis) -> None:
        """Columns as wide as this analysis needs (its widest index and short class name), fixed:
        the list is drawn right from the first frame, not once the table has measured its cells when
        next idle, and does not jump when a filter changes the rows."""
        indices = data.per_image["indices"]
        index_width = len(str(int(indices.max()))) if len(indices) else 1
        class_width = max(len(self.short_class(k)) for k in range(len(data.class_names)))
        table = self.query_one("#image-list", DataTable)
        table.clear(columns=True)
        for label, width in (("#", index_width), ("class", class_width), ("T S", len("✓ ✗")), ("r", len("-1.00"))):
            table.add_column(label, width=max(len(label), width))

    def refilter(self) -> None:
        data = self.data
        if data is None:
            return
        keep = self.current_row()
        if self._pending_dataset_index is not None:
            matches = np.flatnonzero(data.per_image["indices"] == self._pending_dataset_index)
            keep = int(matches[0]) if len(matches) else keep
            self._pending_dataset_index = None
        self.rows = self.filters.rows(data)
        table = self.query_one("#image-list", DataTable)
        table.clear()
        labels, preds = data.per_image["labels"], data.per_image["preds"]
        pearson = data.per_image["pearson"][self.student] if data.students else None
        for row in self.rows:
            marks = Text(" ").join(
                Text("✓", style="green") if preds[model_row, row] == labels[row] else Text("✗", style="red")
                for model_row in (0, 1 + self.student))
            value = float(pearson[row]) if pearson is not None else math.nan
            table.add_row(str(int(data.per_image["indices"][row])), Text(self.short_class(int(labels[row]))), marks,
                          "—" if math.isnan(value) else f"{value:.2f}", key=str(row))
        if keep in self.rows:
            table.move_cursor(row=self.rows.index(keep))
        self.show_filters()
        self.show_image()

    def watch_filters(self) -> None:
        self.refilter()

    def show_filters(self) -> None:
        data = self.data
        if data is None:
            return
        self.query_one("#filters", Label).update(self.filters.describe(data, len(self.rows), FILTERS_WIDTH))

    def short_class(self, k: int) -> str:
        """A class name in the list's column, cut where classes look alike (striped-h vs striped-d)."""
        data = self.data
        assert data is not None
        if self._short_classes[0] != data.info.id:
            self._short_classes = (data.info.id, shorten_all(list(data.class_names), CLASS_WIDTH))
        return self._short_classes[1].get(data.class_name(k), data.class_name(k)[:CLASS_WIDTH])

    def class_name(self, k: int) -> str:
        return self.data.class_name(k) if self.data else str(k)

    def current_row(self) -> int | None:
        table = self.query_one("#image-list", DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def action_move(self, step: int) -> None:
        table = self.query_one("#image-list", DataTable)
        if self.rows:
            table.move_cursor(row=max(0, min(len(self.rows) - 1, table.cursor_row + step)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Queued behind keys already waiting, so a held j/k redraws the panel once, not per row.
        if event.data_table.id == "image-list" and not self._panel_pending:
            self._panel_pending = True
            self.call_later(self._redraw_panel)

    def _redraw_panel(self) -> None:
        self._panel_pending = False
        self.show_image()

    # -- the panel ---------------------------------------------------------------------------
    def cards_for(self, row: int) -> list[Card]:
        data = self.data
        assert data is not None
        return [self.card_for(row, None), *(self.card_for(row, m) for m in range(len(data.models)))]

    def card_for(self, row: int, m: int | None) -> Card:
        """The original (``m`` None) or model ``m``'s card for image ``row``, built once while recent."""
        data = self.data
        assert data is not None
        key = (row, "" if m is None else data.models[m], self.blend and m is not None,
               self.other_target and m is not None)
        return self._cards.get(key, lambda: self.build_card(row, m))

    def build_card(self, row: int, m: int | None) -> Card:
        data = self.data
        assert data is not None
        image = np.asarray(data.images[row])
        labels, preds, conf = data.per_image["labels"], data.per_image["preds"], data.per_image["confidences"]
        if m is None:
            card = Card("original", f"true: {self.class_name(int(labels[row]))}", None, picture(image, None, False))
        else:
            model = data.models[m]
            cam, note = self.cam_of(model, row)
            caption = f"{self.class_name(int(preds[m, row]))} {100 * float(conf[m, row]):.0f}%{note}"
            card = Card(model, caption, bool(preds[m, row] == labels[row]), picture(image, np.asarray(cam), self.blend))
        return card

    def cam_of(self, model: str, row: int) -> tuple[np.ndarray, str]:
        """The map to show: the analysis target's, or with ``t`` the other class's where the
        analysis computed it (its diagnosis of the model's worst errors)."""
        data = self.data
        assert data is not None
        if self.other_target and row in data.diagnosis_rows.get(model, {}):
            kind = "pred" if data.target == "label" else "true"
            return data.diagnosis_maps[model][kind][data.diagnosis_rows[model][row]], f" [{kind}]"
        return data.maps[model][row], ""

    def target_label(self) -> str:
        data = self.data
        assert data is not None
        return target_label(data.target, self.other_target)

    def show_image(self) -> None:
        data, row, layout = self.data, self.current_row(), self.cards_layout
        if data is None or layout is None:  # cards are laid out once the panel has its size
            return
        images, page = self.query_one("#panel-images"), self.query_one("#panel-page", Label)
        if row is None:  # nothing matches: no panel of an image the list no longer shows
            self.query_one("#panel-title", Label).update("no image matches the filters")
            self.query_one("#image-metrics", Static).update("")
            images.display = page.display = False
            return
        images.display, page.display = True, layout.paged
        # Title, cards and metrics have fixed sizes: a key repaints them without a layout pass. What the
        # keys change comes first: a narrow panel cuts the end, which the list beside it shows.
        self.query_one("#panel-title", Label).update(Text(  # class names are free text from results.json
            f"{data.method} · target {self.target_label()} · {'overlay' if self.blend else 'heatmap'} · image "
            f"{int(data.per_image['indices'][row])}, true {self.class_name(int(data.per_image['labels'][row]))}"),
            layout=False)
        self.show_cards(row, layout)
        self.query_one("#image-metrics", Static).update(self.metrics_table(row), layout=False)

    def show_cards(self, row: int, layout: PanelLayout) -> None:
        """The original and the current page's models."""
        data = self.data
        assert data is not None
        shown = layout.shown(self.page)
        for i, widget in enumerate(self.query(CamCard)):
            widget.display = i < len(shown)  # the last page may hold fewer models
            if i < len(shown):
                m = shown[i]
                card = self.card_for(row, m)
                widget.show(card, card.title if m is None else self._short_models[card.title])
        if layout.paged:
            models = [m for m in shown if m is not None]
            where = f"models {models[0] + 1}–{models[-1] + 1} of {len(data.models)}" if models else "the original"
            self.query_one("#panel-page", Label).update(f"{where} · n next, p previous", layout=False)

    def metrics_table(self, row: int) -> Table:
        data = self.data
        assert data is not None
        table = Table(box=None, padding=(0, 0, 0, 1), header_style="bold")
        widths = metric_widths(data.students)
        table.add_column("student", width=widths[0], no_wrap=True)
        for (_, title), width in zip(METRIC_COLUMNS, widths[1:], strict=True):
            table.add_column(title, justify="right", width=width, no_wrap=True)
        for s, student in enumerate(data.students):
            cells = []
            for key, _ in METRIC_COLUMNS:
                value = float(data.per_image[key][s, row])
                text = "—" if math.isnan(value) else f"{value:.3f}"
                style = band_style(band_of(key, value)) if key in BANDED_METRICS and not math.isnan(value) else ""
                cells.append(Text(text, style=style))
            table.add_row(Text(self._short_models[student], style="bold" if s == self.student else ""), *cells)
        return table

    # -- keys ----------------------------------------------------------------------------------
    def sibling_analyses(self, same: str) -> list[AnalysisInfo]:
        """Analyses of the same models and images that differ in method or target."""
        data = self.data
        assert data is not None
        return siblings(self.analyses, data.info, same)

    def action_toggle_target(self) -> None:
        data, row = self.data, self.current_row()
        if data is None or row is None:
            return
        flip = other_target(data.target)
        other = next((a for a in self.sibling_analyses("method") if a.target == flip), None)
        if other is not None:
            self.switch_analysis(other)
        elif any(row in rows for rows in data.diagnosis_rows.values()) or self.other_target:
            self.other_target = not self.other_target
            self.show_image()
        else:
            self.notify("the other class's CAM was not computed for this image; analyze with target "
                        f"{flip!r} to see it", severity="warning")

    @work(thread=True, exclusive=True, group="siblings", exit_on_error=False)
    def action_cycle_method(self) -> None:
        """The next CAM method computed for these models and images (a sibling analysis). The list of
        analyses is read again first: one may have been written since (by the demo, or a headless run)."""
        analyses, _ = scan_analyses(self.kdcam.workspace.root)
        self.app.call_from_thread(self._cycle_method, analyses)

    def _cycle_method(self, analyses: list[AnalysisInfo]) -> None:
        data = self.data
        if data is None:
            return
        self.analyses = analyses
        same_target = sorted(self.sibling_analyses("target"), key=lambda a: (a.method, a.id))
        if len(same_target) < 2:
            self.notify(f"only {data.method} was computed for these models and images", severity="warning")
            return
        ids = [a.id for a in same_target]
        self.switch_analysis(same_target[(ids.index(data.info.id) + 1) % len(ids)])

    def switch_analysis(self, info: AnalysisInfo) -> None:
        row = self.current_row()
        if row is not None and self.data is not None:
            self._pending_dataset_index = int(self.data.per_image["indices"][row])
        self.notify(f"{info.method} · target {info.target}", timeout=2)
        self.reload(info.id)

    def action_page(self, step: int) -> None:
        """The next (or previous) models that do not fit beside the list, round to the first again."""
        layout = self.cards_layout
        if layout is None:
            return
        if not layout.paged:
            self.notify(f"all {layout.models} models are shown", timeout=2)
            return
        self.page = (self.page + step) % layout.pages
        self.show_image()

    def action_toggle_overlay(self) -> None:
        self.blend = not self.blend
        self.show_image()

    def action_cycle_class(self) -> None:
        """A searchable list of the classes (type part of a name), instead of stepping through them."""
        from tui.screens.dialogs import PickerDialog

        data = self.data
        if data is None:
            return
        counts = np.bincount(data.per_image["labels"], minlength=len(data.class_names))
        options: list[tuple[str, object]] = [("all classes", None)]
        options += [(f"{k}: {name} ({counts[k]} images)", k) for k, name in enumerate(data.class_names)]

        def picked(value: object) -> None:
            if value is not PickerDialog.CANCELLED and (value is None or isinstance(value, int)):
                self.filters = replace(self.filters, class_filter=value)

        self.app.push_screen(PickerDialog("show images of class", options, self.filters.class_filter), picked)

    def action_cycle_outcome(self) -> None:
        self.filters = self.filters.next_outcome()

    def action_toggle_degenerate(self) -> None:
        self.filters = self.filters.toggled_degenerate()

    def action_cycle_sort(self) -> None:
        self.filters = self.filters.next_sort()

    def action_cycle_student(self, step: int) -> None:
        if self.data and self.data.students:
            self.filters = self.filters.next_student(step, len(self.data.students))

    def action_export_panel(self) -> None:
        data, row = self.data, self.current_row()
        if data is None or row is None:
            return
        cards = self.cards_for(row)
        index = int(data.per_image["indices"][row])
        path = self.kdcam.workspace.exports / "panels" / f"{data.info.id}-image{index}-{data.method}.png"
        self.write_panel(cards, path)

    @work(thread=True, group="export", exit_on_error=False)
    def write_panel(self, cards: list[Card], path: Path) -> None:
        panel_png(cards, path)
        self.app.call_from_thread(self.notify, f"panel written to {path}", title="exported")

    def job_event(self, event: JobEvent, record: JobRecord | None) -> None:
        if isinstance(event, Finished) and record is not None and isinstance(record.spec, ANALYSIS_SPECS):
            self.reload()
