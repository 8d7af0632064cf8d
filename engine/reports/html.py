"""Building blocks of the self-contained report.html: escaped text, tables, inlined images, the page.

The page must open offline from a copied folder, so nothing here ever references a resource
by URL: images are base64 ``data:`` URIs, the stylesheet and the table-sorting script are
inline. Everything dynamic goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.api import display


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: float | None, digits: int = 4) -> str:
    """How every metric is written in the page (and compared to results.json by the tests)."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.{digits}f}"


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] (accuracy, agreement, confidence, rates) as the percentage every view shows."""
    if value is None or math.isnan(value):
        return "–"
    return display.percent(value, digits)


def image(png: bytes, alt: str, css_class: str = "figure") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{css_class}" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False
    help: str = ""


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], table_id: str,
          row_attrs: Sequence[str] | None = None) -> str:
    """A sortable table. Cells are pre-rendered HTML; numeric columns carry ``data-value`` for sorting."""
    head = "".join(
        f'<th data-numeric="{int(c.numeric)}" title="{esc(c.help or "click to sort")}">{esc(c.title)}</th>'
        for c in columns
    )
    body = []
    for i, row in enumerate(rows):
        attrs = f" {row_attrs[i]}" if row_attrs else ""
        body.append(f"<tr{attrs}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return (
        f'<div class="scroll"><table class="sortable" id="{esc(table_id)}"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table></div>'
    )


def numeric_cell(value: float | None, digits: int = 4, extra: str = "", as_percent: bool = False) -> str:
    """A number with its exact value kept in ``data-value`` (sorting, and tests that read the DOM);
    ``as_percent`` shows a fraction as a percentage (one decimal), the value stays the fraction."""
    raw = "" if value is None or math.isnan(value) else repr(float(value))
    shown = percent(value) if as_percent else number(value, digits)
    return f'<span class="num" data-value="{raw}">{shown}</span>{extra}'


def name_cell(full: str, short: str) -> str:
    """A model name shortened from the middle (the display policy) on one line, the whole name on hover."""
    return f'<span class="name" title="{esc(full)}">{esc(short)}</span>'


def section(title: str, body: str, anchor: str, lead: str = "") -> str:
    intro = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{intro}{body}</section>'


def page(title: str, subtitle: str, facts: Sequence[tuple[str, str]], nav: Sequence[tuple[str, str]],
         sections: Sequence[str]) -> str:
    """The whole document: header with what was computed, a small table of contents, the sections."""
    fact_rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    links = "".join(f'<a href="#{esc(anchor)}">{esc(name)}</a>' for anchor, name in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><p class="subtitle">{esc(subtitle)}</p>'
        f'<dl class="facts">{fact_rows}</dl><nav>{links}</nav></header>'
        f'<main>{"".join(sections)}</main>'
        f"<script>{SORT_SCRIPT}</script></body></html>\n"
    )


STYLE = """
:root { --ink:#1f2328; --muted:#5f6670; --rule:#d8dce0; --paper:#ffffff; --wash:#f6f7f8; --accent:#2f5d8a; }
* { box-sizing: border-box; }
body { margin:0; background:var(--wash); color:var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 28px; }
header { padding-top: 32px; padding-bottom: 12px; }
h1 { font-size: 26px; font-weight: 600; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; font-weight: 600; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 15px; font-weight: 600; margin: 18px 0 6px; }
.subtitle, .lead, .note { color: var(--muted); margin: 0 0 12px; }
.facts { display:grid; grid-template-columns: max-content 1fr; gap: 2px 18px; margin: 16px 0;
  background: var(--paper); border: 1px solid var(--rule); border-radius: 6px; padding: 12px 16px; font-size: 13.5px; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; font-variant-numeric: tabular-nums; }
nav { display:flex; flex-wrap: wrap; gap: 6px 16px; font-size: 13.5px; }
nav a, a { color: var(--accent); text-decoration: none; } nav a:hover { text-decoration: underline; }
section { background: var(--paper); border: 1px solid var(--rule); border-radius: 6px; padding: 18px 22px; margin: 18px 0; }
.scroll { overflow-x: auto; max-width: 100%; }
.nowrap, .num, .name { white-space: nowrap; }
.name { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 12px; }
.sub { display: block; color: var(--muted); font-size: 11.5px; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; font-variant-numeric: tabular-nums; margin: 8px 0 4px; }
th, td { padding: 5px 6px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: middle; }
th { font-weight: 600; color: var(--muted); cursor: pointer; user-select: none; vertical-align: bottom; font-size: 12px; }
th[data-sort="asc"]::after { content: " \\25B2"; font-size: 10px; }
th[data-sort="desc"]::after { content: " \\25BC"; font-size: 10px; }
tbody tr:hover { background: #fafbfc; }
.band { display:inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.swatch { display:inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: baseline; }
.legend { display:flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; color: var(--muted); margin: 6px 0 10px; }
.interval { display:block; position: relative; width: 60px; height: 7px; margin-top: 3px;
  background: #eef0f2; border-radius: 4px; vertical-align: middle; }
.interval i { position:absolute; top:0; bottom:0; border-radius: 4px; opacity: 0.85; }
.interval b { position:absolute; top:-2px; bottom:-2px; width: 2px; background: var(--ink); }
.figure { max-width: 100%; height: auto; display: block; margin: 10px 0; border: 1px solid var(--rule); border-radius: 4px; }
.figures { display:grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 8px 18px; }
.bands li { margin: 2px 0; font-size: 13.5px; }
details { margin: 6px 0; } summary { cursor: pointer; color: var(--accent); }
.summary { background: var(--wash); border-left: 3px solid var(--accent); padding: 8px 14px; margin: 8px 0 12px; }
.summary li { margin: 2px 0; }
footer { max-width: 1180px; margin: 0 auto; padding: 8px 28px 32px; color: var(--muted); font-size: 12.5px; }
@media (max-width: 1100px) { header, main { padding-left: 14px; padding-right: 14px; } section { padding: 14px 14px; } }
@media print { body { background: #fff; } section { border: none; padding: 0; } nav { display: none; } }
"""  # noqa: E501 (one CSS rule per line)

# Click a header to sort by that column; numeric columns sort by each cell's data-value.
SORT_SCRIPT = """
(function () {
  function key(cell, numeric) {
    if (!numeric) return cell.textContent.trim().toLowerCase();
    var tagged = cell.querySelector('[data-value]');
    var v = parseFloat(tagged ? tagged.getAttribute('data-value') : cell.textContent);
    return isNaN(v) ? -Infinity : v;
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function (th, index) {
      th.addEventListener('click', function () {
        var numeric = th.getAttribute('data-numeric') === '1';
        var asc = th.getAttribute('data-sort') !== 'asc';
        heads.forEach(function (h) { h.removeAttribute('data-sort'); });
        th.setAttribute('data-sort', asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  document.documentElement.setAttribute('data-report-ready', '1');
})();
"""
