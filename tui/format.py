"""Small text formatters shared by the screens (numbers the way a person reads them)."""

from __future__ import annotations

import re


def clip(text: str, width: int) -> str:
    """Long values (dataset specs with options) end in an ellipsis instead of widening a table."""
    return text if len(text) <= width else text[: width - 1] + "…"


def params(count: int | None) -> str:
    if count is None:
        return "—"
    if count >= 1_000_000:
        return f"{count / 1e6:.2f}M"
    if count >= 1_000:
        return f"{count / 1e3:.1f}k"
    return str(count)


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def created(iso: str | None) -> str:
    """'2026-11-22T02:34:20+00:00' -> '2026-11-22 02:34' (minutes are enough in a table)."""
    if not iso:
        return "—"
    return iso.replace("T", " ")[:16]


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


#: per job kind, the form field that stands for each CLI option an engine message may name
FORM_FIELDS: dict[str, dict[str, str]] = {
    "export": {"--out": "folder under exports/", "--overwrite": "overwrite existing", "--formats": "formats"},
    "analyze": {"--n": "images N", "--dataset": "dataset", "--layer": "layer", "--method": "CAM method",
                "--target": "target", "--teacher": "teacher", "--students": "students"},
    "train": {"--dataset": "dataset", "--teacher": "teacher", "--student": "student architecture",
              "--methods": "methods", "--recipe": "recipe", "--epochs": "epochs", "--width": "student width",
              "--teacher-width": "teacher width", "--batch-size": "batch size", "--lr": "learning rate",
              "--seed": "seed", "--option": "method options", "--device": "device"},
}
_OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def in_form_terms(message: str, kind: str) -> str:
    """An engine message in the words of the form that submitted the job: the engine names CLI options
    (``--out``), the TUI user sees fields ("folder under exports/"). Options with no field stay."""
    fields = FORM_FIELDS.get(kind, {})
    return _OPTION.sub(lambda m: f"“{fields[m.group()]}”" if m.group() in fields else m.group(), message)


def markup_literal(text: str) -> str:
    """``text`` for the few Textual APIs that take only a markup string (the command palette's help
    line): every ``[`` escaped, so it shows as written. ``rich.markup.escape`` is not enough there:
    it leaves ``[ @click=…]`` and ``[UNK]`` alone, and Textual's parser reads both as tags."""
    return text.replace("[", "\\[")

