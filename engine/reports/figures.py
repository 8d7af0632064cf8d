"""Report figures as PNG bytes, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Every function takes plain numbers and arrays and returns the encoded PNG, so the same
figure can be written to a file and inlined into report.html without drawing it twice.
Figures are built on ``matplotlib.figure.Figure`` directly: pyplot keeps global state that
is neither thread-safe nor needed here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from engine.reports.bands import BAND_COLOURS, BAND_THRESHOLDS, METRIC_LABELS

RIGHT_COLOUR = "#1b7f3b"
WRONG_COLOUR = "#b3261e"
INK = "#222222"
MUTED = "#6b6b6b"
DPI = 100
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


def _as_rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 and image.shape[2] == 3 else image.reshape(*image.shape[:2])


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


def cam_grid(rows: Sequence[GridRow], title: str) -> bytes:
    """Original | teacher | each student, one image per row; captions coloured right/wrong."""
    columns = 1 + max(len(row.panels) for row in rows)
    fig = Figure(figsize=(1.55 * columns, 1.75 * len(rows) + 0.5), dpi=DPI)
    fig.suptitle(title, fontsize=11, color=INK, x=0.01, ha="left")
    for r, row in enumerate(rows):
        ax = fig.add_subplot(len(rows), columns, r * columns + 1)
        ax.imshow(_as_rgb(row.image), cmap="gray", interpolation="nearest")
        ax.set_title(row.caption, fontsize=7, color=INK)
        ax.set_axis_off()
        for c, panel in enumerate(row.panels, start=2):
            ax = fig.add_subplot(len(rows), columns, r * columns + c)
            ax.imshow(overlay(row.image, panel.cam), interpolation="bilinear")
            colour = RIGHT_COLOUR if panel.correct else WRONG_COLOUR
            mark = "✓" if panel.correct else "✗"
            ax.set_title(f"{panel.model}\n{mark} {panel.predicted} {panel.confidence:.0%}", fontsize=6.5, color=colour)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(2)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.6, w_pad=0.3)
    return _png(fig)


@dataclass(frozen=True)
class IntervalBar:
    """A student's mean of one metric, its 95% interval and its band."""

    label: str
    mean: float
    low: float
    high: float
    band: str


def metric_chart(metric: str, bars: Sequence[IntervalBar]) -> bytes:
    """Horizontal bars of one metric per student with 95% intervals, bands as coloured bars and guides."""
    fig = Figure(figsize=(6.4, 0.45 * len(bars) + 1.3), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(bars))
    means = np.array([b.mean for b in bars], dtype=float)
    errors = np.array([[b.mean - b.low for b in bars], [b.high - b.mean for b in bars]], dtype=float)
    ax.barh(y, means, color=[BAND_COLOURS[b.band] for b in bars], height=0.6, alpha=0.85)
    ax.errorbar(means, y, xerr=np.clip(errors, 0, None), fmt="none", ecolor=INK, capsize=3, linewidth=1)
    for threshold, band in BAND_THRESHOLDS[metric]:
        ax.axvline(threshold, color=BAND_COLOURS[band], linestyle="--", linewidth=0.8)
    ax.set_yticks(y, [b.label for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{METRIC_LABELS[metric]} (mean, 95% bootstrap interval)", fontsize=8, color=INK)
    upper = max(1.0, float(np.nanmax([b.high for b in bars], initial=0.0)) * 1.05)
    ax.set_xlim(0, upper)
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
    if k <= 25:
        for i, j in zip(*np.nonzero(counts)):
            ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=5.5,
                    color="white" if normalised[i, j] > 0.6 else INK)
    ax.set_xlabel("predicted class", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title(title, fontsize=10, color=INK)
    fig.tight_layout()
    return _png(fig)


@dataclass(frozen=True)
class WorstItem:
    """A poorly predicted image with the CAM of its true class and of the class predicted instead."""

    image: np.ndarray
    caption: str
    true_cam: np.ndarray | None
    predicted_cam: np.ndarray | None
    correct: bool


def worst_predictions_sheet(title: str, items: Sequence[WorstItem]) -> bytes:
    """One row per image: original | CAM for the true class | CAM for the predicted class (when stored)."""
    columns = 1 + int(any(i.true_cam is not None for i in items)) + int(any(i.predicted_cam is not None for i in items))
    fig = Figure(figsize=(1.8 * columns + 0.4, 1.85 * len(items) + 0.5), dpi=DPI)
    fig.suptitle(title, fontsize=10, color=INK, x=0.02, ha="left")
    for r, item in enumerate(items):
        colour = RIGHT_COLOUR if item.correct else WRONG_COLOUR
        ax = fig.add_subplot(len(items), columns, r * columns + 1)
        ax.imshow(_as_rgb(item.image), cmap="gray", interpolation="nearest")
        ax.set_title(item.caption, fontsize=6.5, color=colour)
        ax.set_axis_off()
        column = 2
        for cam, name in ((item.true_cam, "true-class CAM"), (item.predicted_cam, "predicted-class CAM")):
            if cam is None:
                continue
            ax = fig.add_subplot(len(items), columns, r * columns + column)
            ax.imshow(overlay(item.image, cam), interpolation="bilinear")
            ax.set_title(name, fontsize=6.5, color=MUTED)
            ax.set_axis_off()
            column += 1
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return _png(fig)


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


def training_curves(curves: dict[str, list[dict]], title: str) -> bytes:
    """Test accuracy and total loss per epoch for each run-backed model (one line per model)."""
    fig = Figure(figsize=(9.0, 3.4), dpi=DPI)
    acc_ax, loss_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for name, records in curves.items():
        epochs = [r["epoch"] for r in records]
        acc_ax.plot(epochs, [r.get("test_acc", np.nan) for r in records], label=name, linewidth=1.2)
        loss_ax.plot(epochs, [sum(r.get("losses", {}).values()) for r in records], label=name, linewidth=1.2)
    acc_ax.set_title("test accuracy", fontsize=9)
    loss_ax.set_title("training loss (sum of terms)", fontsize=9)
    for ax in (acc_ax, loss_ax):
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    loss_ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10, color=INK)
    fig.tight_layout()
    return _png(fig)
