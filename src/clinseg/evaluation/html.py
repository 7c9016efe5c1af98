"""Small helpers for clinseg's self-contained HTML reports: the style sheet, embedded PNGs, tables, a page."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping

import pandas as pd

#: The CSS every clinseg report uses.
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}h2{margin-top:1.6em}
.muted{color:#777}"""


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` element with ``png`` embedded as base64 (the page stays one self-contained file)."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table_html(table: pd.DataFrame, digits: Mapping[str, int] | None = None, default_digits: int = 3,
               bold: pd.Series | None = None) -> str:
    """An HTML ``<table>`` of ``table``: floats rounded (per column ``digits``), NaN as ``n/a``, escaped.

    ``bold`` (boolean, aligned with the rows) sets rows in bold, e.g. significant comparisons.
    """
    digits = digits or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for index, (_, row) in enumerate(table.iterrows()):
        cells = "".join(f"<td>{_cell(row[c], digits.get(str(c), default_digits))}</td>" for c in table.columns)
        style = ' style="font-weight:bold"' if bold is not None and bool(bold.iloc[index]) else ""
        rows.append(f"<tr{style}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def page_html(title: str, body: str) -> str:
    """A complete HTML document with :data:`STYLE` around ``body`` (``title`` is escaped)."""
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _cell(value: object, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))
