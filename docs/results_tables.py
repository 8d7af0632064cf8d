"""RESULTS.md's tables, written from ``kdcam aggregate --json`` output or one analysis' results.json.

Why a script: the tables hold a few hundred numbers; copying them by hand from the terminal
invites typos, and anyone rerunning the study should get the same tables from their own run.

    kdcam -w W aggregate --json study-s0 study-s1 study-s2 > study.json
    python docs/results_tables.py study.json            # both seed tables, markdown, to stdout
    python docs/results_tables.py --analysis W/analyses/ID/results.json \
        --quantities accuracy,follows_cue,energy_on_cue,energy_in_mask   # one analysis, with intervals
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: (key in the aggregate, column heading, scale): accuracy in percent, differences in points
COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("accuracy", "accuracy (%)", 100.0),
    ("pearson", "Pearson to teacher", 1.0),
    ("iou", "IoU", 1.0),
    ("pointing_game", "pointing game", 1.0),
    ("energy_in_mask", "energy in mask", 1.0),
    ("energy_on_distractors", "energy on distractors", 1.0),
)


#: quantities shown in percent (differences in points)
PERCENT = ("accuracy", "follows_cue")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("aggregate", type=Path, nargs="?", help="the JSON kdcam aggregate --json printed")
    parser.add_argument("--rows", help="comma-separated methods to print, in that order (default: all)")
    parser.add_argument("--analysis", type=Path, help="one analysis' results.json instead of an aggregate")
    parser.add_argument("--quantities", default="accuracy,pointing_game,energy_in_mask",
                        help="with --analysis: the per-model quantities, comma-separated")
    args = parser.parse_args(argv)
    if args.analysis is not None:
        print(analysis_table(json.loads(args.analysis.read_text()), args.quantities.split(",")))
        return
    if args.aggregate is None:
        parser.error("give an aggregate file or --analysis")
    study = last_document(args.aggregate.read_text())
    rows = study["rows"]
    if args.rows:
        wanted = ["teacher", *args.rows.split(",")]
        rows = [r for name in wanted for r in study["rows"] if r["method"] == name]
    print(values_table(rows))
    print()
    print(differences_table(rows))


def last_document(text: str) -> dict[str, Any]:
    """The aggregate itself: ``--json`` prints progress events (one JSON object a line) before it."""
    decoder, position, found = json.JSONDecoder(), 0, None
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        document, position = decoder.raw_decode(text, position)
        if isinstance(document, dict) and "rows" in document:
            found = document
    if found is None:
        raise SystemExit("no aggregate in the file: give it what kdcam aggregate --json printed")
    return found


def values_table(rows: list[dict[str, Any]]) -> str:
    """Mean over seeds [95% t interval] of each quantity, one row per method."""
    lines = _header(["model", *(heading for _, heading, _ in COLUMNS)])
    for row in rows:
        label = f"{row['method']} (baseline)" if row["role"] == "baseline" else row["method"]
        cells = [_stat(row["metrics"].get(key), scale, digits=1 if scale != 1.0 else 3) for key, _, scale in COLUMNS]
        lines.append(_line([label, *cells]))
    return "\n".join(lines)


def differences_table(rows: list[dict[str, Any]]) -> str:
    """Each method minus the baseline: mean over seeds [interval] · better in k/n (significant in j)."""
    lines = _header(["method − baseline", *(f"Δ {heading.replace(' (%)', ' (pts)')}" for _, heading, _ in COLUMNS)])
    for row in rows:
        if row["role"] == "baseline":
            continue
        cells = []
        for key, _, scale in COLUMNS:
            diff = row["vs_baseline"].get(key)
            if diff is None or diff["mean"] is None:
                cells.append("–")
                continue
            seeds = sum(v is not None for v in diff["values"])
            cells.append(f"{_stat(diff, scale, digits=1 if scale != 1.0 else 3, signed=True)} · "
                         f"{diff['better']}/{seeds} ({diff['significant']})")
        lines.append(_line([row["method"], *cells]))
    return "\n".join(lines)


def analysis_table(results: dict[str, Any], quantities: list[str]) -> str:
    """One analysis: each model's value [95% bootstrap interval] and its paired difference from the
    baseline, for quantities kept on the model (accuracy, follows_cue) or under its ``mask``."""
    headings = []
    for quantity in quantities:
        percent = quantity in PERCENT
        headings += [quantity.replace("_", " ") + (" (%)" if percent else ""), "Δ (pts)" if percent else "Δ vs baseline"]
    lines = _header(["model", *headings])
    for model in results["models"]:
        label = "teacher" if model["role"] == "teacher" else model["method"] or model["name"]
        if model["name"] == results.get("baseline"):
            label += " (baseline)"
        cells = []
        for quantity in quantities:
            scale = 100.0 if quantity in PERCENT else 1.0
            digits = 1 if scale != 1.0 else 3
            value = model.get(quantity) or (model.get("mask") or {}).get(quantity)
            difference = (model.get("vs_baseline") or {}).get(quantity)
            cells += [_stat(value, scale, digits), _stat(difference, scale, digits, signed=True)]
        lines.append(_line([label, *cells]))
    return "\n".join(lines)


def _stat(stat: dict[str, Any] | None, scale: float, digits: int, signed: bool = False) -> str:
    if stat is None or stat["mean"] is None:
        return "–"
    sign = "+" if signed else ""

    def number(value: float) -> str:
        return f"{value * scale:{sign}.{digits}f}".replace("-", "−")

    if stat["ci_low"] is None or stat["ci_high"] is None or stat["ci_low"] == stat["ci_high"]:
        return number(stat["mean"])  # one value, or the same in every seed (the shared teacher)
    return f"{number(stat['mean'])} [{number(stat['ci_low'])}, {number(stat['ci_high'])}]"


def _header(cells: list[str]) -> list[str]:
    return [_line(cells), _line(["---"] * len(cells))]


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
