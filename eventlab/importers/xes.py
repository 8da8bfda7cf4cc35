"""Read an XES event log (``.xes`` or ``.xes.gz``) as rows ready to import, streaming.

The file is fed to expat in chunks; only the current trace is held in memory,
so a large log never needs its whole document tree. Each event becomes a row:
its trace's ``concept:name`` is the case, its own ``concept:name`` the activity,
``time:timestamp`` the time; other event attributes form the payload, the
trace's attributes the metadata. Line numbers are those of the ``<event>`` tag.

>>> from pathlib import Path
>>> import eventlab
>>> log = Path(eventlab.__file__).parents[1] / "data" / "running-example" / "running-example.xes"
>>> rows = read_xes(log)
>>> rows.num_rows, rows.column_names
(42, ['line', 'case', 'activity', 'timestamp', 'data', 'metadata', 'ord'])
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.parsers import expat

import msgspec
import pyarrow as pa

from .compressed import content
from .errors import LogImportError

_CHUNK = 1 << 20
_ATTRIBUTES = {"string", "date", "int", "float", "boolean", "id", "list", "container"}
_NO_ELEMENTS = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]
_encode = msgspec.json.Encoder().encode
_ABSENT = object()   # an attribute that is there but holds no value


def read_xes(path: str | os.PathLike[str], attributes: Collection[str] | None = None,
             progress: Callable[[int], None] | None = None, digest: Any = None) -> pa.Table:
    """Parse an XES file into import rows; ``progress(n)`` gets the bytes read so far,
    and ``digest`` (a hashlib object), if given, every decompressed chunk."""
    path = Path(path)
    reader = _Reader(str(path), None if attributes is None else set(attributes))
    raw = open(path, "rb")  # noqa: SIM115 - closed below, after the gzip layer
    try:
        stream = content(raw)
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except (EOFError, OSError, zlib.error) as exc:
                raise LogImportError(
                    f"{path.name}: the compressed file is damaged or cut short ({exc}); "
                    "nothing was imported") from None
            if digest is not None:
                digest.update(chunk)
            reader.feed(chunk, final=not chunk)
            if progress is not None:
                progress(raw.tell())
            if not chunk:
                break
    finally:
        raw.close()
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
                    if typed is not _ABSENT:
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
                lines.append(line)
                cases.append(case)
                activities.append(str(activity))
                times.append(event.pop("time:timestamp", None))
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
        """A typed attribute value; dates other than the event time become UTC ISO text."""
        if text is None or tag in ("list", "container"):
            return None
        try:
            if tag == "int":
                return int(text)
            if tag == "float":
                number = float(text)
            elif tag == "boolean":
                return text.strip().lower() == "true"
            elif tag == "date" and key != "time:timestamp":
                return iso_utc(text)
            else:
                return text
        except (ValueError, OverflowError):
            raise LogImportError(
                f"{self.name}, line {self.parser.CurrentLineNumber}: attribute {key!r}: "
                f"{text!r} is not a valid {tag}") from None
        if math.isnan(number):
            return _ABSENT       # a float with no value: left out, as in a CSV
        if math.isinf(number):
            raise LogImportError(
                f"{self.name}, line {self.parser.CurrentLineNumber}: attribute {key!r}: "
                f"{text!r} is infinite, which JSON cannot hold; nothing was imported")
        return number

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


def iso_utc(text: str) -> str:
    """A date as ISO 8601 text in UTC with microseconds (naive dates are taken as UTC).

    >>> iso_utc("2011-10-01T00:38:44.546+02:00")
    '2011-09-30T22:38:44.546000Z'
    >>> iso_utc("0001-01-01T00:00:00")
    '0001-01-01T00:00:00.000000Z'
    """
    moment = datetime.fromisoformat(text.strip())
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
