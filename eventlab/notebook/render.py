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

#: Colours for event types, picked in order of first appearance: Tableau's ten (its grey
#: swapped for olive), then darker and lighter companions: 30 distinct colours, none of
#: them grey, so grey can mean "other" (``OTHER``). Past 30, ``colours`` makes more.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#637939",
           "#1f4e79", "#b35806", "#2d6a2e", "#8c1c24", "#2f7f7a", "#9c7c00",
           "#6a3d7c", "#c2185b", "#5b3a29", "#393b79",
           "#a0cbe8", "#ffbe7d", "#8cd17d", "#17becf", "#d4a6c8", "#bcbd22",
           "#d7b5a6", "#e377c2", "#7f7fff", "#00a2d8")

#: The colour of "other": several types folded into one bar, band or box. No type has it.
OTHER = "#c7c7c7"

#: Charts are drawn and shown at this many pixels per inch (one PNG pixel per screen pixel).
DPI = 100

_TD = '<td style="padding:1px 8px;text-align:left"'
_BOX = ("font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;"
        "line-height:1.45;border:1px solid #ddd;border-radius:4px;padding:6px 8px;margin:2px 0")


class ChartFigure(Figure):
    """A matplotlib ``Figure`` that shows itself as a PNG in any notebook.

    Built without pyplot, so it leaves no global figure state behind and needs
    no interactive backend. Its dpi is ``DPI`` unless given, whatever the
    notebook's matplotlib settings, so a chart has the same pixel size everywhere.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dpi", DPI)
        super().__init__(*args, **kwargs)

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure rendered to PNG bytes with the Agg renderer, at its own dpi unless
    ``dpi`` is given; the margins are trimmed to what is drawn (``bbox_inches="tight"``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi if dpi is None else dpi, bbox_inches="tight")
    return buffer.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels of PNG bytes (from the header).

    >>> png_size(figure_png(ChartFigure(figsize=(3, 2))))   # 3 x 2 in, 0.1 in of margin
    (320, 220)
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not PNG bytes: they do not start with a PNG header")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def png_img(png: bytes, alt: str = "chart") -> str:
    """An ``<img>`` tag embedding PNG bytes (for HTML that must stand alone).

    It is shown at its own pixel size, never stretched: ``width`` and ``height``
    are the PNG's, and a narrower page only shrinks it (``max-width:100%``).

    >>> png_img(figure_png(ChartFigure(figsize=(3, 2))))[:77]
    '<img alt="chart" width="320" height="220" style="max-width:100%;height:auto" '
    """
    data = base64.b64encode(png).decode()
    width, height = png_size(png)
    return (f'<img alt="{html.escape(alt)}" width="{width}" height="{height}" '
            f'style="max-width:100%;height:auto" src="data:image/png;base64,{data}"/>')


def show_png(image: Any, png: bytes) -> None:
    """Show PNG bytes in an ``ipywidgets.Image`` at their own pixel size: the widget's
    ``width`` is the PNG's, so a box laying it out cannot stretch it wider (it
    may still shrink it to fit, as ipywidgets caps images at ``max-width:100%``)."""
    image.value = png
    image.width = str(png_size(png)[0]) if png else ""


def colours(names: Iterable[str], palette: Sequence[str] = PALETTE) -> dict[str, str]:
    """A stable colour per name, from ``palette`` in order of first appearance; past the
    palette's end, further distinct colours (never grey, never repeating).

    >>> picked = colours(f"t{i}" for i in range(40))
    >>> len(set(picked.values())), picked["t0"] == PALETTE[0], OTHER in picked.values()
    (40, True, False)
    """
    out: dict[str, str] = {}
    for name in names:
        if name not in out:
            n = len(out)
            out[name] = palette[n] if n < len(palette) else _extra(n - len(palette))
    return out


def _extra(k: int) -> str:
    """The ``k``-th colour past a palette: hues a golden angle apart, in three lightnesses."""
    from colorsys import hls_to_rgb

    hue = (0.11 + k * 0.381966) % 1.0
    light = (0.38, 0.55, 0.70)[k % 3]
    r, g, b = hls_to_rgb(hue, light, 0.65)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


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


def event_card(event: Any, title: str = "event", colour: str | None = None) -> str:
    """A recorded event: type, version, payload fields, metadata and time.

    ``colour`` is the type's colour (``plots.type_colours``), shown as a swatch.
    """
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
            f'<b>{html.escape(title)}</b> v{event.version} {swatch(colour)}'
            f'<span class="el-type" style="font-weight:bold">{html.escape(event.type)}</span>'
            f" at position {event.position}<br/>"
            f'<table style="border-collapse:collapse">{items}</table>'
            f"metadata: {meta}<br/>recorded at: "
            f"{html.escape(short(event.recorded_at))}</div>")


def swatch(colour: str | None) -> str:
    """A small square of ``colour`` (empty for None), as in the timeline's legend."""
    if colour is None:
        return ""
    return f'<span class="el-swatch" style="color:{html.escape(colour)}">■</span>&nbsp;'


def payload_line(data: Any, limit: int = 48) -> str:
    """An event payload on one line: ``field=value, ...`` cut at ``limit`` characters.

    >>> payload_line({"amount": 5.0, "note": "rent"})
    "amount=5.0, note='rent'"
    """
    fields = fields_of(data)
    text = short(data, limit) if fields is None else ", ".join(
        f"{k}={short(v, limit)}" for k, v in fields.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_table(changes: Mapping[str, Any], title: str = "what changed") -> str:
    """Before and after of each changed path (a ``timetravel.Diff``), one row each.

    >>> from eventlab.timetravel import diff
    >>> table = diff_table(diff({"a": 1}, {"a": 2}))
    >>> "<code>a</code>" in table, table.count("<tr")
    (True, 2)
    """
    from ..timetravel import MISSING

    def cell(value: Any) -> str:
        text = "—" if value is MISSING else html.escape(short(value, 40))
        return f"{_TD}>{text}</td>"

    rows = "".join(f'<tr class="el-diff-row" data-path="{html.escape(path)}">'
                   f"{_TD}><code>{html.escape(path or '(state)')}</code></td>"
                   f"{cell(change.old)}{cell(change.new)}</tr>"
                   for path, change in changes.items())
    body = (f'<table style="border-collapse:collapse"><tr><th>path</th><th>before</th>'
            f"<th>after</th></tr>{rows}</table>" if rows else "<br/>nothing changed")
    return (f'<div class="el-diff" style="{_BOX}"><b>{html.escape(title)}</b>'
            f"{body}</div>").replace("<th>", '<th style="padding:1px 8px;text-align:left">')


def event_rows(events: Sequence[Any], current: int, length: int,
               skipped: Iterable[int] = (), palette: Mapping[str, str] | None = None) -> str:
    """A window of a stream's events as a list: version, type, payload; the ``current``
    version is marked and ``skipped`` versions are struck through."""
    skipped, palette = set(skipped), palette or {}
    rows = []
    for e in events:
        text = (f"{_TD}>v{e.version}</td>{_TD}>{swatch(palette.get(e.type))}"
                f"{html.escape(e.type)}</td>{_TD}>{html.escape(payload_line(e.data))}</td>")
        if e.version in skipped:
            text = text.replace(f"{_TD}>", f"{_TD}><s>").replace("</td>", "</s></td>")
        mark = ' class="el-current" style="background:#e3ecf7;font-weight:bold"' \
            if e.version == current else ""
        rows.append(f'<tr{mark} data-version="{e.version}">{text}</tr>')
    span = f"events {events[0].version}–{events[-1].version} of {length}" if events \
        else "no events yet"
    return (f'<div class="el-events" style="{_BOX}"><b>{span}</b>'
            f'<table style="border-collapse:collapse">{"".join(rows)}</table></div>')


_LEGEND = 12


def timeline_marks(types: Sequence[str], width: int = 560, max_marks: int = 400,
                   palette: Mapping[str, str] | None = None) -> str:
    """The fixed part of a stream's timeline: coloured ticks and a legend (see below).

    ``palette`` maps each type to its colour (pass ``plots.type_colours`` so the
    strip matches every chart of the log); by default the stream's own types
    are coloured in order of first appearance. Long streams are drawn in
    ``max_marks`` buckets (each coloured by its first event's type) so the SVG
    stays small whatever the length.
    """
    n = len(types)
    names = list(getattr(types, "names", None) or dict.fromkeys(types))
    palette = colours(names) if palette is None else dict(palette)
    missing = [t for t in names if t not in palette]
    if missing:
        raise ValueError(f"the palette has no colour for the type(s) {missing[:5]}")
    marks: list[str] = []
    buckets = min(n, max_marks)
    step = width / buckets if buckets else width
    for b in range(buckets):
        colour = palette[types[b * n // buckets]]
        marks.append(f'<rect x="{b * step:.1f}" y="8" width="{max(step - 0.5, 0.5):.1f}" '
                     f'height="14" fill="{colour}"/>')
    legend = " ".join(f'<span class="el-legend" title="{html.escape(t)}">'
                      f"{swatch(palette[t])}{html.escape(t)}</span>" for t in names[:_LEGEND])
    if len(names) > _LEGEND:
        legend += f" and {len(names) - _LEGEND} more types"
    return "".join(marks) + "\x00" + legend


def timeline_svg(types: Sequence[str], current: int, width: int = 560, height: int = 26,
                 marks: str | None = None) -> str:
    """A strip of the stream: one tick per event coloured by type, ``current`` marked.

    Pass ``marks`` from ``timeline_marks`` to redraw only the cursor (cheap for
    long streams). The SVG holds shapes only, no text: a notebook shown
    untrusted drops the SVG, and whatever text it held would be left behind on
    the page; what the strip says is in the ``title`` attribute and the legend.
    """
    n = len(types)
    ticks, legend = (marks or timeline_marks(types, width)).split("\x00")
    cursor = ""
    if n and current > 0:
        x = (current - 0.5) * width / n
        cursor = (f'<polygon class="el-cursor" points="{x - 5:.1f},0 {x + 5:.1f},0 '
                  f'{x:.1f},7" fill="#222"/><line x1="{x:.1f}" y1="7" x2="{x:.1f}" '
                  f'y2="24" stroke="#222" stroke-width="2"/>')
    said = f"{n} events, version {current} marked" if current else f"{n} events"
    return (f'<div class="el-timeline" data-current="{current}" data-length="{n}" '
            f'title="the stream: {said}" style="font-size:11px">'
            f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{said}">{ticks}{cursor}</svg><br/>{legend}</div>')
