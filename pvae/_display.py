r"""How pvae records show themselves: a short ``repr`` and a small HTML table for Jupyter.

Every public record (``BayesTable``, ``ExactPosterior``, ``Comparison``, ``FitResult``, ...)
has a ``__repr__`` of a few lines and a ``_repr_html_`` that a notebook shows instead: a
title, a table of its numbers, a note of the units, and where it helps a small inline
picture drawn without matplotlib (probability bars inside the cells, an SVG sparkline of a
training curve). Long content is cut with a count (``... 190 more rows``), in text and in
HTML alike, so printing a record of 200 epochs or 400 rows stays short.

The pieces, used by the records' modules:

- :func:`fmt` -- one number as the records print it (``None`` reads "unavailable");
- :func:`text_table` -- aligned columns, cut at ``max_rows`` with a count;
- :func:`html_record` -- the HTML of a record: title, key-value rows, tables, notes;
- :func:`html_table`, :func:`bar`, :func:`sparkline` -- its parts;
- :func:`short_repr` -- ``Name(field=value, ...)`` on one line;
- :func:`record_html` / :func:`record_repr` -- the two methods a plain record class adopts
  (its fields as rows, tensors summarised by shape and range).

Examples
--------
>>> print(text_table(["h", "p"], [[i, 0.1 * i] for i in range(30)], max_rows=3))
h    p
0    0
1  0.1
2  0.2
... 27 more rows
>>> "27 more rows" in html_table(["h", "p"], [[i, 0.1 * i] for i in range(30)], max_rows=3)
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "MAX_ROWS",
    "bar",
    "fmt",
    "html_record",
    "html_table",
    "record_html",
    "record_repr",
    "short_repr",
    "sparkline",
    "summarize",
    "text_table",
]

#: Rows shown before a table is cut ("... N more rows").
MAX_ROWS = 20

_STYLE = (
    "<style>.pvae-record{font-family:system-ui,-apple-system,sans-serif;font-size:13px;"
    "max-width:100%;overflow-x:auto}.pvae-record table{border-collapse:collapse;margin:.3em 0}"
    ".pvae-record td,.pvae-record th{border:1px solid #d5dbe3;padding:.15em .6em;"
    "text-align:right}.pvae-record th{background:#f1f4f8}.pvae-record td:first-child,"
    ".pvae-record th:first-child{text-align:left}.pvae-record .pvae-note{color:#5b6470;"
    "font-size:12px}.pvae-record .pvae-bar{display:inline-block;height:.7em;"
    "background:#4c78a8;vertical-align:middle;margin-right:.3em}</style>"
)


def fmt(value: Any, digits: int = 6) -> str:
    """One value as records print it: floats with ``digits`` significant digits.

    Examples
    --------
    >>> fmt(1 / 3), fmt(None), fmt(2), fmt(float("nan")), fmt("x")
    ('0.333333', 'unavailable', '2', 'nan', 'x')
    """
    if value is None:
        return "unavailable"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "numel", lambda: 0)() == 1:
        return fmt(item(), digits)
    return str(value)


def summarize(value: Any) -> str:
    """A tensor or long sequence in a few characters: shape, dtype and range.

    Examples
    --------
    >>> import torch
    >>> summarize(torch.tensor([0.5, 2.0]))
    'tensor [2] float32, 0.5 to 2'
    >>> summarize(list(range(100)))
    'list of 100'
    """
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        dims = "x".join(str(int(s)) for s in shape) or "scalar"
        kind = type(value).__name__.lower()
        dtype = str(value.dtype).replace("torch.", "")
        if getattr(value, "numel", lambda: 0)() and value.dtype.is_floating_point:
            lo, hi = float(value.min()), float(value.max())
            return f"{kind} [{dims}] {dtype}, {fmt(lo, 4)} to {fmt(hi, 4)}"
        return f"{kind} [{dims}] {dtype}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, dict) and len(value) > 6:
        return f"dict of {len(value)}"
    return fmt(value)


def short_repr(name: str, fields: Mapping[str, Any]) -> str:
    """``name(key=value, ...)``, values through :func:`fmt` (strings quoted).

    Examples
    --------
    >>> short_repr("KHatResult", {"khat": 0.31, "diagnosis": "good"})
    "KHatResult(khat=0.31, diagnosis='good')"
    """
    cells = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={fmt(v)}" for k, v in fields.items()]
    return f"{name}({', '.join(cells)})"


def _more(n: int) -> str:
    return f"... {n} more row{'s' if n != 1 else ''}"


def text_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, max_rows: int | None = MAX_ROWS
) -> str:
    """Aligned text columns (first left, others right), cut at ``max_rows`` with a count."""
    rows = list(rows)
    shown = rows if max_rows is None else rows[:max_rows]
    cells = [[fmt(c) for c in row] for row in shown]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        rest = zip(values[1:], widths[1:], strict=True)
        parts = [values[0].ljust(widths[0])] + [v.rjust(w) for v, w in rest]
        return "  ".join(parts).rstrip()

    out = [line(list(header))] + [line(r) for r in cells]
    if len(rows) > len(shown):
        out.append(_more(len(rows) - len(shown)))
    return "\n".join(out)


def bar(p: float, width: int = 60) -> str:
    """An inline HTML bar of ``p`` (a probability in [0, 1]) ``width`` pixels at 1.

    Examples
    --------
    >>> bar(0.5)
    '<span class="pvae-bar" style="width:30px"></span>'
    """
    p = 0.0 if not isinstance(p, (int, float)) or math.isnan(p) else min(max(float(p), 0.0), 1.0)
    return f'<span class="pvae-bar" style="width:{round(p * width)}px"></span>'


def sparkline(values: Sequence[float], *, width: int = 160, height: int = 36) -> str:
    """A small SVG line of ``values`` (finite ones), with its first and last value.

    Examples
    --------
    >>> sparkline([-3.0, -2.0, -1.5]).startswith("<svg")
    True
    >>> sparkline([])
    ''
    """
    points = [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(points) < 2:
        return ""
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span, last = (hi - lo) or 1.0, max(i for i, _ in points) or 1
    xy = " ".join(
        f"{2 + (width - 4) * i / last:.1f},{height - 2 - (height - 4) * (v - lo) / span:.1f}"
        for i, v in points
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="from {fmt(points[0][1], 4)} to {fmt(points[-1][1], 4)}">'
        f'<polyline fill="none" stroke="#4c78a8" stroke-width="1.5" points="{xy}"/></svg>'
    )


def html_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    max_rows: int | None = MAX_ROWS,
    bars: Sequence[int] = (),
) -> str:
    """An HTML table, cut at ``max_rows`` with a count; columns in ``bars`` get a bar."""
    rows = list(rows)
    shown = rows if max_rows is None else rows[:max_rows]
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for row in shown:
        cells = []
        for i, value in enumerate(row):
            text = html.escape(fmt(value))
            cells.append(f"<td>{bar(value) if i in bars else ''}{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if len(rows) > len(shown):
        more = html.escape(_more(len(rows) - len(shown)))
        body.append(f'<tr><td colspan="{len(header)}" class="pvae-note">{more}</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_record(
    title: str,
    fields: Mapping[str, Any] | None = None,
    *,
    tables: Sequence[str] = (),
    notes: Sequence[str] = (),
    extra: str = "",
) -> str:
    """The HTML of a record: a bold title, a two-column table of ``fields``, tables, notes.

    ``tables`` and ``extra`` are HTML already (from :func:`html_table`, :func:`sparkline`);
    ``title``, field names and ``notes`` are escaped here.

    Examples
    --------
    >>> page = html_record("Evaluation", {"elbo": -3.25}, notes=["nats per example"])
    >>> "<b>Evaluation</b>" in page and "-3.25" in page and "nats per example" in page
    True
    """
    parts = [_STYLE, '<div class="pvae-record">', f"<b>{html.escape(title)}</b>"]
    if fields:
        parts.append(html_table(["", "value"], [(k, v) for k, v in fields.items()], max_rows=None))
    parts.extend(tables)
    if extra:
        parts.append(f"<div>{extra}</div>")
    parts.extend(f'<div class="pvae-note">{html.escape(n)}</div>' for n in notes if n)
    parts.append("</div>")
    return "".join(parts)


def _fields(record: Any) -> dict[str, Any]:
    names = getattr(record, "_fields", None)
    if names is None:
        import dataclasses

        names = [f.name for f in dataclasses.fields(record) if f.repr]
    return {n: getattr(record, n) for n in names}


def record_repr(self: Any) -> str:
    """``Name(field=value, ...)`` with tensors and long sequences summarised (a method).

    Examples
    --------
    >>> from typing import NamedTuple
    >>> import torch
    >>> class R(NamedTuple):
    ...     khat: float
    ...     pointwise: torch.Tensor
    ...     __repr__ = record_repr
    >>> R(0.25, torch.zeros(200))
    R(khat=0.25, pointwise=tensor [200] float32, 0 to 0)
    """
    cells = []
    for k, v in _fields(self).items():
        shown = summarize(v)
        cells.append(f"{k}={v!r}" if isinstance(v, str) else f"{k}={shown}")
    return f"{type(self).__name__}({', '.join(cells)})"


def record_html(self: Any) -> str:
    """The record's fields as an HTML table (a ``_repr_html_`` method for plain records)."""
    rows = {k: summarize(v) if not isinstance(v, str) else v for k, v in _fields(self).items()}
    return html_record(type(self).__name__, rows)
