"""Report figures as PNG bytes: charts with matplotlib's Agg canvas (no display, no pyplot state),
picture mosaics (CAM grids, worst-prediction sheets) assembled as arrays and captioned with Pillow.

Every function takes plain numbers and arrays and returns the encoded PNG, so the same
figure can be written to a file and inlined into report.html without drawing it twice.
Figures are built on ``matplotlib.figure.Figure`` directly: pyplot keeps global state that
is neither thread-safe nor needed here.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib import colormaps, font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from engine.api.runs import EpochRecord
from engine.reports.bands import BAND_COLOURS, BAND_THRESHOLDS, METRIC_LABELS, band_colour

RIGHT_COLOUR = "#1b7f3b"
WRONG_COLOUR = "#b3261e"
INK = "#222222"
MUTED = "#6b6b6b"
DPI = 100
TILE_PX = 112  # pictures in CAM mosaics are upscaled (whole pixels) to about this size
CAPTION_PX, TITLE_PX = 15, 18  # readable when the page scales a wide grid down to its column
ANNOTATE_MAX_CLASSES = 12
_JET = colormaps["jet"]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0,1] (or uint8) CAM, coloured with jet, over a uint8 RGB (or grey) image."""
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    heat = cam.astype(np.float32) / 255.0 if cam.dtype == np.uint8 else cam.astype(np.float32)
    coloured = _JET(np.clip(heat, 0.0, 1.0))[..., :3]
    return np.clip((1 - alpha) * rgb.astype(np.float32) / 255.0 + alpha * coloured, 0.0, 1.0)


@dataclass(frozen=True)
class Panel:
    """One CAM panel of a grid: the map, the model it belongs to, and what that model said."""

    cam: np.ndarray
    model: str
    predicted: str
    confidence: float
    correct: bool


@dataclass(frozen=True)
class GridRow:
    """One image of a CAM grid: the original, then one panel per model (teacher first)."""

    image: np.ndarray
    caption: str
    panels: Sequence[Panel]


@dataclass(frozen=True)
class Tile:
    """One picture of a mosaic with the caption above it and an optional coloured frame."""

    rgb: np.ndarray  # float H x W x 3 in [0, 1]
    caption: str
    colour: str = INK
    frame: str | None = None


def _upscaled(rgb: np.ndarray, scale: int) -> np.ndarray:
    return rgb if scale == 1 else np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Matplotlib's bundled DejaVu Sans, so mosaics and charts share one typeface on every machine."""
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def _mosaic(rows: Sequence[Sequence[Tile | None]], title: str) -> bytes:
    """Tiles pasted into one image, captions drawn with Pillow: the same grid as matplotlib
    subplots (or even as matplotlib text) costs seconds per figure, this a fraction of one."""
    first = next(t for row in rows for t in row if t is not None)
    h, w = first.rgb.shape[:2]
    scale = max(1, TILE_PX // max(h, w))
    th, tw = h * scale, w * scale
    line_px = CAPTION_PX + 2
    lines = max(t.caption.count("\n") + 1 for row in rows for t in row if t is not None)
    gap, caption_px, title_px, border = 10, line_px * lines + 4, 34, 3
    font, title_font = _font(CAPTION_PX), _font(TITLE_PX)
    columns = max(len(row) for row in rows)
    column_w = [tw + 2 * border] * columns  # each column as wide as its widest caption line
    for row in rows:
        for c, tile in enumerate(row):
            if tile is not None:
                widest = max(font.getlength(part) for part in tile.caption.split("\n"))
                column_w[c] = max(column_w[c], int(widest) + 4)
    column_left = np.cumsum([gap] + [w + gap for w in column_w])
    cell_h = th + caption_px + gap
    width = max(int(column_left[-1]), int(title_font.getlength(title)) + 2 * gap)
    canvas = np.full((title_px + len(rows) * cell_h + gap, width, 3), 255, np.uint8)
    captions = []
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            if tile is None:
                continue
            top, left = title_px + r * cell_h + caption_px, int(column_left[c]) + (column_w[c] - tw) // 2
            if tile.frame is not None:
                canvas[top - border:top + th + border, left - border:left + tw + border] = _rgb255(tile.frame)
            canvas[top:top + th, left:left + tw] = np.round(_upscaled(tile.rgb, scale) * 255).astype(np.uint8)
            captions.append((left + tw / 2, top - border - 2, tile.caption, tile.colour))
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    draw.text((gap, title_px // 2 + 2), title, fill=INK, font=title_font, anchor="lm")
    for x, bottom, caption, colour in captions:
        parts = caption.split("\n")
        for k, part in enumerate(parts):
            y = bottom - (len(parts) - 1 - k) * line_px
            draw.text((x, y), part, fill=colour, font=font, anchor="md")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _rgb255(colour: str) -> np.ndarray:
    return np.round(np.array(to_rgb(colour)) * 255).astype(np.uint8)


def _original(image: np.ndarray) -> np.ndarray:
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    return rgb.astype(np.float32) / 255.0


def cam_grid(rows: Sequence[GridRow], title: str) -> bytes:
    """Original | teacher | each student, one image per row; captions and frames coloured right/wrong."""
    tiles = []
    for row in rows:
        line: list[Tile | None] = [Tile(_original(row.image), row.caption)]
        for panel in row.panels:
            colour = RIGHT_COLOUR if panel.correct else WRONG_COLOUR
            mark = "✓" if panel.correct else "✗"
            caption = f"{panel.model}\n{mark} {panel.predicted} {panel.confidence:.0%}"
            line.append(Tile(overlay(row.image, panel.cam), caption, colour, colour))
        tiles.append(line)
    return _mosaic(tiles, title)


@dataclass(frozen=True)
class IntervalBar:
    """A student's mean of one metric, its 95% interval and its band."""

    label: str
    mean: float
    low: float
    high: float
    band: str | None


def metric_chart(metric: str, bars: Sequence[IntervalBar]) -> bytes:
    """Horizontal bars of one metric per student with 95% intervals, bands as coloured bars and guides."""
    fig = Figure(figsize=(6.4, 0.45 * len(bars) + 1.3), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(bars))
    means = np.array([b.mean for b in bars], dtype=float)
    errors = np.array([[b.mean - b.low for b in bars], [b.high - b.mean for b in bars]], dtype=float)
    ax.barh(y, means, color=[band_colour(b.band) for b in bars], height=0.6, alpha=0.85)
    ax.errorbar(means, y, xerr=np.clip(errors, 0, None), fmt="none", ecolor=INK, capsize=3, linewidth=1)
    for threshold, band in BAND_THRESHOLDS[metric]:
        ax.axvline(threshold, color=BAND_COLOURS[band], linestyle="--", linewidth=0.8)
    ax.set_yticks(y, [b.label for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{METRIC_LABELS[metric]} (mean, 95% bootstrap interval)", fontsize=8, color=INK)
    upper = max(1.0, float(np.nanmax([b.high for b in bars], initial=0.0)) * 1.05)
    lower = min(0.0, float(np.nanmin([b.low for b in bars], initial=0.0)) * 1.05)  # correlations can be negative
    ax.set_xlim(lower, upper)
    if lower < 0:
        ax.axvline(0, color=MUTED, linewidth=0.8)
    ax.tick_params(labelsize=8, colors=INK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """Row-normalised confusion matrix (rows: true class), counts written where the grid is small enough."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(class_names)
    side = min(14.0, 2.5 + 0.32 * k)
    fig = Figure(figsize=(side, side * 0.9), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fontsize = 7 if k <= 30 else 5
    if k <= 40:
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(k), class_names, fontsize=fontsize)
    if k <= ANNOTATE_MAX_CLASSES:  # beyond that the numbers are unreadable (and slow to draw): see the CSV
        for i, j in zip(*np.nonzero(counts), strict=True):
            ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=5.5,
                    color="white" if normalised[i, j] > 0.6 else INK)
    ax.set_xlabel("predicted class", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title(title, fontsize=10, color=INK)
    # Fixed margins: tight_layout measures every tick label, a second full draw of a big figure.
    fig.subplots_adjust(left=0.2, bottom=0.2, right=0.92, top=0.93)
    return _png(fig)


@dataclass(frozen=True)
class WorstItem:
    """A poorly predicted image with the CAM of its true class and of the class predicted instead."""

    image: np.ndarray
    caption: str
    true_label: str
    predicted_label: str
    true_cam: np.ndarray | None
    predicted_cam: np.ndarray | None
    correct: bool


def worst_predictions_sheet(title: str, items: Sequence[WorstItem], per_row: int = 2) -> bytes:
    """Groups of original | CAM for the true class | CAM for the predicted class (when stored), ``per_row`` per line."""
    rows: list[list[Tile | None]] = []
    for start in range(0, len(items), per_row):
        line: list[Tile | None] = []
        for item in items[start:start + per_row]:
            colour = RIGHT_COLOUR if item.correct else WRONG_COLOUR
            line.append(Tile(_original(item.image), item.caption, colour, colour))
            for cam, name in ((item.true_cam, f"CAM: {item.true_label}\n(true)"),
                              (item.predicted_cam, f"CAM: {item.predicted_label}\n(predicted)")):
                if cam is not None:  # analyses without diagnosis maps show the images alone
                    line.append(Tile(overlay(item.image, cam), name, MUTED))
        rows.append(line)
    return _mosaic(rows, title)


@dataclass(frozen=True)
class ConfusedExample:
    """An image of one confused pair with the model's map of it and its confidence in the wrong class."""

    image: np.ndarray
    cam: np.ndarray
    confidence: float


def confused_pairs_sheet(title: str, pairs: Sequence[tuple[str, Sequence[ConfusedExample]]]) -> bytes:
    """One row per confused pair (true → predicted, with its count): example images and the model's maps."""
    rows: list[list[Tile | None]] = []
    for label, examples in pairs:
        line: list[Tile | None] = []
        for k, example in enumerate(examples):
            caption = f"{label}\n{example.confidence:.0%}" if k == 0 else f"\n{example.confidence:.0%}"
            line.append(Tile(_original(example.image), caption, WRONG_COLOUR, WRONG_COLOUR))
            line.append(Tile(overlay(example.image, example.cam), "\nCAM", MUTED))
        rows.append(line)
    return _mosaic(rows, title)


def confused_pairs_chart(pairs: Sequence[tuple[str, str, int]], title: str) -> bytes:
    """The most frequent (true → predicted) confusions as a ranked horizontal bar chart."""
    fig = Figure(figsize=(6.4, 0.32 * max(len(pairs), 1) + 1.2), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"{t} → {p}" for t, p, _ in pairs]
    ax.barh(np.arange(len(pairs)), [c for _, _, c in pairs], color="#4c72b0", height=0.6)
    ax.set_yticks(np.arange(len(pairs)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("images (true → predicted)", fontsize=8)
    ax.set_title(title, fontsize=10, color=INK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def loss_terms(curves: Mapping[str, Sequence[EpochRecord]]) -> list[str]:
    """Every loss term of the runs, in first-seen order: one small chart each."""
    terms: dict[str, None] = {}
    for records in curves.values():
        for record in records:
            terms.update(dict.fromkeys(record.losses))
    return list(terms)


def training_curves(curves: Mapping[str, Sequence[EpochRecord]], title: str,
                    labels: Mapping[str, str] | None = None) -> bytes:
    return _png(training_figure(curves, title, labels))


def training_figure(curves: Mapping[str, Sequence[EpochRecord]], title: str,
                    labels: Mapping[str, str] | None = None) -> Figure:
    """Test accuracy (percent), then one small chart per loss term with its own axis, each line a
    run-backed model. Terms differ by orders of magnitude (a hint loss near 16 beside a
    cross-entropy near 0.5), so a shared axis or their sum would flatten all but the largest."""
    terms = loss_terms(curves)
    panels = 1 + len(terms)
    columns = min(panels, 3)
    rows = -(-panels // columns)
    fig = Figure(figsize=(3.6 * columns, 2.7 * rows + 0.5), dpi=DPI)
    axes = [fig.add_subplot(rows, columns, k + 1) for k in range(panels)]
    acc_ax, term_axes = axes[0], dict(zip(terms, axes[1:], strict=True))
    for k, (name, records) in enumerate(curves.items()):
        colour = f"C{k % 10}"
        label = (labels or {}).get(name, name)
        epochs = [r.epoch for r in records]
        acc_ax.plot(epochs, [np.nan if r.test_acc is None else 100 * r.test_acc for r in records], label=label,
                    linewidth=1.2, color=colour)
        for term, ax in term_axes.items():
            values = [r.losses.get(term, np.nan) for r in records]
            if any(np.isfinite(values)):
                ax.plot(epochs, values, linewidth=1.2, color=colour)
    acc_ax.set_title("test accuracy (%)", fontsize=9)
    for term, ax in term_axes.items():
        ax.set_title(f"loss: {term}", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.legend(*acc_ax.get_legend_handles_labels(), loc="lower center", ncol=min(len(curves), 4), fontsize=7,
               frameon=False)
    fig.suptitle(title, fontsize=10, color=INK)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(curves) > 4), 1, 1))
    return fig
