"""Benchmark outputs: one self-contained HTML page (tables, embedded PNG plots), Markdown and CSV tables.

The page follows :mod:`srjudge.report.html`: inline CSS, no JavaScript, no external assets (plots are
data URIs), a Content-Security-Policy that forbids any network access, and every text HTML-escaped
(judge names and dataset fields come from users).
"""

from __future__ import annotations

import base64
import csv
import html
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from srjudge import __version__

PAGE_CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde2ea;--bg:#f5f7fa;--card:#fff;color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--fg);background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:20px 20px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:0 0 8px}
.note{color:var(--muted);margin:0 0 12px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;margin:16px 0}
table.data{border-collapse:collapse;width:100%;font-size:13px}
table.data th,table.data td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:break-word}
table.data th{background:#f0f3f8;font-weight:600;white-space:nowrap}
.num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
table.data td.wrap{white-space:normal;min-width:14em;max-width:28em}
.scroll{overflow-x:auto;max-width:100%}
.scroll>table.data{width:auto;min-width:100%}
table.kv{border-collapse:collapse;font-size:13px;margin-top:6px}
table.kv th{text-align:left;padding:2px 12px 2px 0;color:var(--muted);font-weight:500;vertical-align:top}
table.kv td{overflow-wrap:anywhere}
.settings summary{cursor:pointer;font-weight:600}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}
.plots figure{margin:0}.plots img{display:block;max-width:100%;height:auto;border:1px solid var(--line)}
.plots figcaption{color:var(--muted);font-size:12.5px;overflow-wrap:break-word;margin-top:4px}
@media (max-width:600px){main{padding:10px}section{padding:10px}.plots{grid-template-columns:1fr}}
footer{color:var(--muted);font-size:12px;text-align:center}
"""


def escape_html(text: object) -> str:
    """``text`` as HTML-escaped text (quotes too), for element content and attribute values."""
    return html.escape(str(text), quote=True)


def format_value(value: object, digits: int = 3) -> str:
    """A table cell as text: floats to ``digits`` decimals, NaN/None as an em dash, pairs as ``[lo, hi]``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.{digits}f}"
    if isinstance(value, tuple | list) and len(value) == 2:
        return f"[{format_value(value[0], digits)}, {format_value(value[1], digits)}]"
    return str(value)


def columns_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(str(key), None)
    return list(seen)


def is_number(value: object) -> bool:
    """An int or float (not a bool): such table cells are right-aligned."""
    return isinstance(value, int | float) and not isinstance(value, bool)


_NUMERIC_TEXT = re.compile(r"^(?:[+\-\u2212]?\.?\d|n/a$|nan$|—$)")
_SEPARATORS = re.compile(r"([:,;/=|_\-]+)")


def is_numeric_text(value: object) -> bool:
    """A pre-formatted number as text (``0.91 [0.88, 0.93]``, ``-0.12 [..]``, ``n/a``)."""
    return isinstance(value, str) and bool(_NUMERIC_TEXT.match(value.strip()))


def _is_empty(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def nonempty_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The rows' columns (first-seen order) that hold a value in at least one row (None, "" and NaN
    are empty)."""
    rows = list(rows)
    return [c for c in columns_of(rows) if any(not _is_empty(r.get(c)) for r in rows)]


def _breakable(text: str) -> str:
    """``text`` HTML-escaped, with a line-break opportunity after each run of separators (specs such
    as ``vlm:qwen2-vl-2b,protocol=perceive`` then wrap at their parts, never inside a word)."""
    return "".join(
        escape_html(part) + ("<wbr>" if i % 2 else "") for i, part in enumerate(_SEPARATORS.split(text))
    )


def table_html(
    rows: Sequence[Mapping[str, Any]],
    *,
    numeric_text: bool = False,
    drop_empty: bool = False,
    wrap: Collection[str] = (),
) -> str:
    """Rows as an HTML table (columns in first-seen order) in a horizontally scrollable wrapper.

    Number cells are right-aligned and never wrap, and with ``numeric_text`` so are text cells that
    hold a pre-formatted number (:func:`is_numeric_text`). ``drop_empty`` leaves out columns with no
    value in any row; cells of the ``wrap`` columns (long names such as judge specs) may wrap, but only
    after separators (``:,;/=|_-``). Headers never wrap.
    """
    if not rows:
        return '<p class="note">No rows.</p>'
    cols = nonempty_columns(rows) if drop_empty else columns_of(rows)

    def numeric(value: object) -> bool:
        return is_number(value) or (numeric_text and is_numeric_text(value))

    # A header sits over its numbers (right) when every filled cell of its column is a number.
    right = {
        c for c in cols if c not in wrap and all(numeric(r.get(c)) for r in rows if not _is_empty(r.get(c)))
    }
    head = "".join(
        f'<th class="num">{escape_html(c)}</th>' if c in right else f"<th>{escape_html(c)}</th>" for c in cols
    )
    body = []
    for row in rows:
        cells = []
        for c in cols:
            value = row.get(c)
            text = format_value(value)
            if c in wrap and not is_number(value):
                cells.append(f'<td class="wrap">{_breakable(text)}</td>')
            elif numeric(value):
                cells.append(f'<td class="num">{escape_html(text)}</td>')
            else:
                cells.append(f"<td>{escape_html(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table class="data"><tr>{head}</tr>{"".join(body)}</table></div>'


def _settings_html(settings: Mapping[str, Any]) -> str:
    if not settings:
        return ""
    rows = "".join(
        f"<tr><th>{escape_html(k)}</th><td><code>{escape_html(v)}</code></td></tr>"
        for k, v in settings.items()
    )
    return f'<details class="settings"><summary>Settings</summary><table class="kv">{rows}</table></details>'


Plot = Path | tuple[Path, str]
"""A plot file, or a plot file and its caption (what the plot shows)."""


def plot_figure(plot: Plot) -> str:
    """A PNG plot embedded as a data URI in a figure with its caption (the file name when none is given)."""
    path, caption = plot if isinstance(plot, tuple) else (plot, Path(plot).stem)
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape_html(caption)}">'
        f"<figcaption>{escape_html(caption)}</figcaption></figure>"
    )


def render_bench_page(
    title: str,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    plots: Sequence[Plot],
    settings: Mapping[str, Any],
    note: str,
    *,
    table_notes: Mapping[str, str] | None = None,
) -> str:
    """The whole page as a string: one table per entry of ``tables``, the PNG ``plots`` embedded, each in
    a figure with its caption (a ``(path, caption)`` pair captions its plot; a bare path is captioned
    with its file name).

    Tables drop their empty columns; the ``judge`` column may wrap at separators, every other cell
    stays on one line (the table scrolls sideways when it is wider than the page). ``table_notes``
    adds a note under the table of that name.
    """
    notes = table_notes or {}
    sections = "".join(
        f"<section><h2>{escape_html(name)}</h2>"
        f"{table_html(rows, numeric_text=True, drop_empty=True, wrap=('judge',))}"
        + (f'<p class="note">{escape_html(notes[name])}</p>' if notes.get(name) else "")
        + "</section>"
        for name, rows in tables.items()
    )
    figures = "".join(plot_figure(p) for p in plots)
    plot_section = f'<section><h2>Plots</h2><div class="plots">{figures}</div></section>' if figures else ""
    note_html = f'<p class="note">{escape_html(note)}</p>' if note else ""
    header = f"<header><h1>{escape_html(title)}</h1>{note_html}{_settings_html(settings)}</header>"
    return html_page(title, f"{header}{sections}{plot_section}")


def html_page(title: str, body: str, *, css: str = PAGE_CSS) -> str:
    """A complete static page around ``body`` (its header and sections): inline ``css``, a
    Content-Security-Policy that forbids network access, and the srjudge footer."""
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape_html(title)}</title><style>{css}</style></head><body><main>"
        f"{body}"
        f"<footer>srjudge {escape_html(__version__)} · static page, no network access needed</footer>"
        "</main></body></html>\n"
    )


def write_bench_page(out_dir: Path | str, page: str) -> Path:
    """Write ``page`` (from :func:`render_bench_page`) as ``out_dir/index.html``; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _md_cell(value: object) -> str:
    text = format_value(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned, floats to 3 decimals, ``|`` escaped)."""
    cols = list(columns) if columns is not None else columns_of(rows)
    if not cols:
        return ""
    numeric = [any(is_number(r.get(c)) for r in rows) for c in cols]
    lines = [
        "| " + " | ".join(_md_cell(c) for c in cols) + " |",
        "| " + " | ".join("---:" if num else "---" for num in numeric) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None, path: Path | str) -> Path:
    """Write the rows as CSV (full precision; None as an empty cell); returns ``path``."""
    cols = list(columns) if columns is not None else columns_of(rows)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in cols])
    return out
