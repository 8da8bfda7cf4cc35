"""Read an XES event log (``.xes`` or ``.xes.gz``) as rows ready to import, streaming.

The file is read in chunks; only the current trace (or a few megabytes of
traces) is held in memory, so a large log never needs its whole document tree.
Each event becomes a row: its trace's ``concept:name`` is the case, its own
``concept:name`` the activity, ``time:timestamp`` the time; other event
attributes form the payload, the trace's attributes the metadata. Line numbers
are those of the ``<event>`` tag.

A log laid out one element a line, as XES writers write them, is read with
vectorised scans (see ``xes_lines``). Any other log, and any log with a
problem, is fed to expat element by element, which reads every layout and
names the line of a problem. Both give the same rows.

>>> from pathlib import Path
>>> import eventlab
>>> log = Path(eventlab.__file__).parents[1] / "data" / "running-example" / "running-example.xes"
>>> rows = read_xes(log)
>>> rows.num_rows, rows.column_names
(42, ['line', 'case', 'activity', 'timestamp', 'data', 'metadata', 'ord'])
>>> rows.equals(read_xes(log, fast=False))     # expat, element by element, agrees
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from xml.parsers import expat

import msgspec
import pyarrow as pa

from .errors import LogImportError
from .xes_input import ABSENT, InfiniteError, read_chunks, typed

_CHUNK = 1 << 20
_ATTRIBUTES = {"string", "date", "int", "float", "boolean", "id", "list", "container"}
_NO_ELEMENTS = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]
_encode = msgspec.json.Encoder().encode
def read_xes(path: str | os.PathLike[str], attributes: Collection[str] | None = None,
             progress: Callable[[int], None] | None = None, digest: Any = None,
             fast: bool = True) -> pa.Table:
    """Parse an XES file into import rows; ``progress(n)`` gets the bytes read so far,
    and ``digest`` (a hashlib object), if given, every decompressed chunk.

    The vectorised reader (``xes_lines``) is tried first unless ``fast`` is False.
    """
    path = Path(path)
    keep = None if attributes is None else set(attributes)
    if fast:
        from .xes_lines import read_lines

        rows = read_lines(path, keep, progress, digest)
        if rows is not None:
            return rows
        digest = None     # it hashed every chunk before it gave up
    reader = _Reader(str(path), keep)
    for chunk in read_chunks(path, _CHUNK, progress, digest):
        reader.feed(chunk, final=not chunk)
    return reader.table()


class _Reader:
    """expat callbacks collecting one trace at a time into columns.

    The callbacks are closures over local state: they run once per XML element
    (over a million times for a large log), so every attribute lookup counts.
    """

    def __init__(self, name: str, keep: set[str] | None) -> None:
        self.name = Path(name).name
        self.parser = parser = expat.ParserCreate()
        self.root: str | None = None
        lines: list[int] = []
        cases: list[str] = []
        activities: list[str] = []
        times: list[str | None] = []
        datas: list[bytes] = []
        metas: list[bytes | None] = []
        self.columns = (lines, cases, activities, times, datas, metas)
        depth = 0                      # > 0 inside an attribute (nested ones are skipped)
        target: dict[str, Any] | None = None     # the event's or the trace's attributes
        trace: dict[str, Any] | None = None
        trace_line = 0
        pending: list[tuple[int, dict[str, Any]]] = []
        value = self.value

        def start(tag: str, attrs: dict[str, str]) -> None:
            nonlocal depth, target, trace, trace_line
            if depth:
                depth += 1
                return
            if ":" in tag:
                tag = tag.rpartition(":")[2]
            if tag == "string":
                depth = 1
                if target is not None:
                    target[attrs["key"]] = attrs.get("value")
            elif tag in _ATTRIBUTES:
                depth = 1
                if target is not None and "key" in attrs:
                    key = attrs["key"]
                    typed = value(tag, key, attrs.get("value"))
                    if typed is not ABSENT:
                        target[key] = typed
            elif tag == "event":
                if trace is None:
                    raise LogImportError(
                        f"{self.name}, line {parser.CurrentLineNumber}: an <event> outside "
                        "a <trace>")
                target = {}
                pending.append((parser.CurrentLineNumber, target))
            elif tag == "trace":
                trace = target = {}
                trace_line = parser.CurrentLineNumber
            elif self.root is None:
                self.root = tag
                if tag != "log":
                    raise LogImportError(
                        f"{self.name}, line {parser.CurrentLineNumber}: not an XES log: the "
                        f"root element is <{tag}>, not <log>")

        def end(tag: str) -> None:
            nonlocal depth, target, trace
            if depth:
                depth -= 1
                return
            if tag == "event" or tag.endswith(":event"):
                target = trace
            elif tag == "trace" or tag.endswith(":trace"):
                attrs, trace, target = trace or {}, None, None
                flush(attrs)

        def flush(attrs: dict[str, Any]) -> None:
            case = attrs.pop("concept:name", None)
            if case is None or case == "":
                raise LogImportError(
                    f"{self.name}, line {trace_line}: the trace has no concept:name "
                    "(its case id)")
            case = str(case)
            metadata = _encode(attrs) if attrs else None
            for line, event in pending:
                activity = event.pop("concept:name", None)
                if activity is None or activity == "":
                    raise LogImportError(f"{self.name}, line {line}: the event has no "
                                         "concept:name (its activity)")
                time = event.pop("time:timestamp", None)
                if time is not None and not isinstance(time, str):
                    raise LogImportError(
                        f"{self.name}, line {line}: time:timestamp is {time!r}, not a date; "
                        "nothing was imported")
                lines.append(line)
                cases.append(case)
                activities.append(str(activity))
                times.append(time)
                if keep is not None:
                    event = {k: v for k, v in event.items() if k in keep}
                datas.append(_encode(event))
                metas.append(metadata)
            pending.clear()

        parser.StartElementHandler = start
        parser.EndElementHandler = end

    def feed(self, chunk: bytes, final: bool) -> None:
        try:
            self.parser.Parse(chunk, final)
        except expat.ExpatError as exc:
            if self.root is None and exc.code == _NO_ELEMENTS:
                raise LogImportError(f"{self.name} is empty: it holds no XES log") from None
            raise LogImportError(
                f"{self.name}, line {exc.lineno}: not well-formed XML "
                f"({expat.errors.messages[exc.code]}); nothing was imported") from None

    def value(self, tag: str, key: str, text: str | None) -> Any:
        """A typed attribute value (see ``typed``); a bad one raises naming the line."""
        if text is None or tag in ("list", "container"):
            return None
        try:
            return typed(tag, key, text)
        except InfiniteError:
            raise LogImportError(
                f"{self.name}, line {self.parser.CurrentLineNumber}: attribute {key!r}: "
                f"{text!r} is infinite, which JSON cannot hold; nothing was imported") from None
        except (ValueError, OverflowError):
            raise LogImportError(
                f"{self.name}, line {self.parser.CurrentLineNumber}: attribute {key!r}: "
                f"{text!r} is not a valid {tag}") from None

    def table(self) -> pa.Table:
        if self.root is None:
            raise LogImportError(f"{self.name} is empty: it holds no XES log")
        lines, cases, activities, times, datas, metas = self.columns
        return pa.table({
            "line": pa.array(lines, pa.int64()),
            "case": pa.array(cases, pa.string()),
            "activity": pa.array(activities, pa.string()),
            "timestamp": pa.array(times, pa.string()),
            "data": pa.array(datas, pa.binary()).cast(pa.string()),
            "metadata": pa.array(metas, pa.binary()).cast(pa.string()),
            "ord": pa.array(range(len(lines)), pa.int64()),
        })
