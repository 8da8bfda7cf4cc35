"""Static rendering shared by the views: HTML fragments and PNG figures.

Everything here is a plain function returning a string or bytes, so the views
stay thin and the same pictures serve the live widget, the static fallback of
an executed notebook, and the tests.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class S:
...     balance: float
>>> "<mark" in state_table(S(5.0), changed={"balance"})
True
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from matplotlib.figure import Figure

#: Colours for event types, picked in order of first appearance: Tableau's ten, then
#: darker and lighter companions, so a log of up to 30 types gets 30 distinct colours.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
           "#1f4e79", "#b35806", "#2d6a2e", "#8c1c24", "#2f7f7a", "#9c7c00",
           "#6a3d7c", "#c2185b", "#5b3a29", "#555555",
           "#a0cbe8", "#ffbe7d", "#8cd17d", "#17becf", "#d4a6c8", "#bcbd22",
           "#d7b5a6", "#e377c2", "#7f7fff", "#000000")

_TD = '<td style="padding:1px 8px"'
_BOX = ("font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;"
        "border:1px solid #ddd;border-radius:4px;padding:6px 8px;margin:2px 0")


class ChartFigure(Figure):
    """A matplotlib ``Figure`` that shows itself as a PNG in any notebook.

    Built without pyplot, so it leaves no global figure state behind and needs
    no interactive backend.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure rendered to PNG bytes with the Agg renderer."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def png_img(png: bytes, alt: str = "chart") -> str:
    """An ``<img>`` tag embedding PNG bytes (for HTML that must stand alone)."""
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'


def colours(names: Iterable[str], palette: Sequence[str] = PALETTE) -> dict[str, str]:
    """A stable colour per name, from ``palette`` in order of first appearance."""
    out: dict[str, str] = {}
    for name in names:
        if name not in out:
            out[name] = palette[len(out) % len(palette)]
    return out


def fields_of(value: Any) -> dict[str, Any] | None:
    """A record's fields as a dict (dataclass, mapping or namedtuple); None for scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return dict(value._asdict())
    return None


def short(value: Any, limit: int = 80) -> str:
    """A one-line repr of a value, cut at ``limit`` characters."""
    text = value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) \
        else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_table(state: Any, changed: Iterable[str] = (), title: str = "state",
                compare: Any = dataclasses.MISSING) -> str:
    """A two-column table of a state's fields; ``changed`` fields are highlighted.

    With ``compare`` given, a third column shows that other state's value and
    rows where the two differ are marked.
    """
    changed = set(changed)
    fields = fields_of(state)
    rows: list[str] = []
    other = None if compare is dataclasses.MISSING else (fields_of(compare) or {"value": compare})
    if fields is None:
        fields = {"value": state}
    names = list(fields)
    if other is not None:
        names += [n for n in other if n not in fields]
    head = "<th>field</th><th>value</th>" + ("<th>what if</th>" if other is not None else "")
    head = head.replace("<th>", '<th style="padding:1px 8px;text-align:left">')
    for name in names:
        value = fields.get(name, "")
        cell = html.escape(short(value))
        if name in changed or (name == "value" and "value" in changed):
            cell = f'<mark class="el-changed" data-field="{html.escape(name)}">{cell}</mark>'
        row = f"{_TD}>{html.escape(name)}</td>{_TD} class=\"el-value\" data-field=\"" \
              f"{html.escape(name)}\">{cell}</td>"
        if other is not None:
            alt = other.get(name, "")
            differs = alt != value
            alt_cell = html.escape(short(alt))
            if differs:
                alt_cell = f'<mark class="el-differs" data-field="{html.escape(name)}">' \
                           f"{alt_cell}</mark>"
            row += f'{_TD} class="el-alt" data-field="{html.escape(name)}">{alt_cell}</td>'
        rows.append(f"<tr>{row}</tr>")
    return (f'<div class="el-state" style="{_BOX}"><b>{html.escape(title)}</b>'
            f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(rows)}</table>'
            "</div>")


def event_card(event: Any, title: str = "event") -> str:
    """A recorded event: type, version, payload fields, metadata and time."""
    if event is None:
        return (f'<div class="el-event" style="{_BOX}"><b>{html.escape(title)}</b>: '
                "none yet (version 0, the initial state)</div>")
    payload = fields_of(event.data)
    if payload is None:
        payload = {"value": event.data}
    items = "".join(f"<tr>{_TD}>{html.escape(k)}</td>{_TD}>{html.escape(short(v))}</td></tr>"
                    for k, v in payload.items())
    meta = ", ".join(f"{html.escape(str(k))}={html.escape(short(v, 40))}"
                     for k, v in (event.metadata or {}).items()) or "—"
    return (f'<div class="el-event" style="{_BOX}" data-version="{event.version}">'
            f'<b>{html.escape(title)}</b> v{event.version} '
            f'<span class="el-type" style="font-weight:bold">{html.escape(event.type)}</span>'
            f" at position {event.position}<br/>"
            f'<table style="border-collapse:collapse">{items}</table>'
            f"metadata: {meta}<br/>recorded at: "
            f"{html.escape(short(event.recorded_at))}</div>")


def timeline_marks(types: Sequence[str], width: int = 560, max_marks: int = 400) -> str:
    """The fixed part of a stream's timeline: coloured ticks and a legend (see below).

    Long streams are drawn in ``max_marks`` buckets (each coloured by its first
    event's type) so the SVG stays small whatever the length.
    """
    n = len(types)
    palette = colours(types)
    marks: list[str] = []
    buckets = min(n, max_marks)
    step = width / buckets if buckets else width
    for b in range(buckets):
        colour = palette.get(types[b * n // buckets], PALETTE[-1])
        marks.append(f'<rect x="{b * step:.1f}" y="8" width="{max(step - 0.5, 0.5):.1f}" '
                     f'height="14" fill="{colour}"/>')
    legend = " ".join(f'<span style="color:{c}">■</span>&nbsp;{html.escape(t)}'
                      for t, c in list(palette.items())[:10])
    return "".join(marks) + "\x00" + legend


def timeline_svg(types: Sequence[str], current: int, width: int = 560, height: int = 34,
                 marks: str | None = None) -> str:
    """A strip of the stream: one tick per event coloured by type, ``current`` marked.

    Pass ``marks`` from ``timeline_marks`` to redraw only the cursor (cheap for
    long streams).
    """
    n = len(types)
    ticks, legend = (marks or timeline_marks(types, width)).split("\x00")
    cursor = ""
    if n and current > 0:
        x = (current - 0.5) * width / n
        cursor = (f'<polygon class="el-cursor" points="{x - 5:.1f},0 {x + 5:.1f},0 '
                  f'{x:.1f},7" fill="#222"/><line x1="{x:.1f}" y1="7" x2="{x:.1f}" '
                  f'y2="24" stroke="#222" stroke-width="2"/>')
    return (f'<div class="el-timeline" data-current="{current}" data-length="{n}" '
            f'style="font-size:11px">'
            f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'{ticks}{cursor}<text x="0" y="{height - 1}" font-size="9">1</text>'
            f'<text x="{width}" y="{height - 1}" font-size="9" text-anchor="end">{n}</text>'
            f"</svg><br/>{legend}</div>")
