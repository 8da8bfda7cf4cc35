"""The fast reader of XES logs laid out one element a line, as XES writers write them.

A log's header (everything before its first ``<trace>`` line) is checked by
expat. From there on every line must be blank or one of ``<trace>``,
``</trace>``, ``<event>``, ``</event>``, the final ``</log>``, or an attribute::

    <string key="..." value="..."/>      (or date, int, float, boolean, id)

whose key and value hold no tab, line break, control character, ``<``, nor an
entity other than ``&amp; &lt; &gt; &quot; &apos;``; and the elements must nest
as a log's do (attributes in a trace or an event, events in a trace). Such text
is well-formed XML, and its elements can be found with vectorised scans: one
regular expression over all lines, numpy over the bytes for the tags and their
nesting, Arrow for the keys and values and the JSON of each event's payload.
Python runs once per trace and per typed (not text) attribute, not once per
element.

Anything else (another layout, nested or list attributes, a DOCTYPE, another
encoding, an event whose attributes repeat a key, a trace or event without its
name, a value that is not of its type, a damaged file) makes ``read_lines``
give up and return None: the element-by-element reader in ``xes`` then reads
the log, or names the line of its problem.

>>> import eventlab, tempfile
>>> from pathlib import Path
>>> log = Path(eventlab.__file__).parents[1] / "data" / "running-example" / "running-example.xes"
>>> read_lines(log, None, None, None).num_rows
42
>>> odd = Path(tempfile.mkdtemp()) / "odd.xes"
>>> _ = odd.write_text('<log><trace><string key="concept:name" value="1"/></trace></log>')
>>> read_lines(odd, None, None, None) is None      # several elements a line: not plain
True

Entities, typed values and absent ones read as the element reader reads them:

>>> crafted = odd.with_name("crafted.xes")
>>> _ = crafted.write_text('''<?xml version="1.0" encoding="UTF-8"?>
... <log>
...   <trace>
...     <string key="concept:name" value="c&amp;1"/>
...     <event>
...       <string key="concept:name" value="pay &quot;now&quot;"/>
...       <date key="time:timestamp" value="2024-01-01T10:00:00+01:00"/>
...       <int key="amount" value="12"/>
...       <float key="missing" value="NaN"/>
...     </event>
...   </trace>
... </log>
... ''')
>>> rows = read_lines(crafted, None, None, None)
>>> rows.column("activity").to_pylist(), rows.column("data").to_pylist()
(['pay "now"'], ['{"amount":12}'])
>>> from eventlab.importers.xes import read_xes
>>> rows.equals(read_xes(crafted, fast=False))
True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any
from xml.parsers import expat

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import LogImportError
from .xes_input import ABSENT, read_chunks, typed

_SEGMENT = 4 << 20           # decompressed bytes read at a time
_MOST = (1 << 31) - 1        # the largest segment Arrow text with 32-bit offsets holds
_HEADER_LIMIT = 64 << 20     # a longer header is left to expat
_TRACE_LINE = re.compile(rb"[ \t]*<trace>[ \t]*\r?")
_TEXT = r'[^"<&\x00-\x1f]*'     # U+FFFE and U+FFFF, not XML either, are looked for apart
_VALUE = rf"{_TEXT}(?:&(?:amp|lt|gt|quot|apos);{_TEXT})*"
_LINES = (rf'^(?:[ \t]*(?:<(?:string|date|int|float|boolean|id) key="{_VALUE}" '
          rf'value="{_VALUE}"[ \t]*/>|</?trace>|</?event>|</log>)?[ \t]*\r?\n)*$')
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"),
             ("&amp;", "&"))     # &amp; last, so "&amp;lt;" stays "&lt;"
_TAGS = ("string", "date", "int", "float", "boolean", "id")
_STRING, _DATE, _ID = 0, 1, 5
_TAG_OF = np.zeros(256, np.int8)    # an attribute's tag by the letter after "<"
for _code, _letter in enumerate("sdifb"):
    _TAG_OF[ord(_letter)] = _code
_LT, _QUOTE, _NEWLINE = ord("<"), ord('"'), ord("\n")
_encode = msgspec.json.Encoder().encode


class _NotPlain(Exception):
    """The log is not (or not only) what this reader reads."""


def read_lines(path: Path, keep: Collection[str] | None,
               progress: Callable[[int], None] | None, digest: Any) -> pa.Table | None:
    """The import rows of the log at ``path`` (as ``xes.read_xes`` gives them), or None
    when it must be read element by element. ``digest`` gets every decompressed
    chunk either way; ``keep`` limits the payload's attributes."""
    chunks = read_chunks(path, _SEGMENT, progress, digest)
    try:
        return _read(chunks, keep)
    except (_NotPlain, LogImportError):
        try:
            for _ in chunks:     # the rest still counts towards the digest
                pass
        except LogImportError:
            pass                 # a damaged file: the element reader says so
        return None


def _read(chunks: Iterator[bytes], keep: Collection[str] | None) -> pa.Table:
    """Check the header, then read segments of whole traces as the chunks come."""
    tables: list[pa.Table] = []
    buf = b""
    line = 0                    # the number of buf's first line; 0 while in the header
    for chunk in chunks:
        buf += chunk
        if not line:
            found = _first_trace(buf)
            if found is None:
                if chunk and len(buf) < _HEADER_LIMIT:
                    continue
                raise _NotPlain
            start, end = found
            line = _header(buf[:start], buf[start:end])
            buf = buf[start:]
        if chunk:
            cut = _after_last_trace(buf)
            if not cut:
                continue
            segment, buf = buf[:cut], buf[cut:]
        else:
            segment, buf = buf, b""
        part = _Segment(segment, line, not chunk)
        tables.append(part.rows(keep))
        line += len(part.newlines)
    rows = pa.concat_tables(tables)
    return rows.append_column("ord", pa.array(np.arange(rows.num_rows, dtype=np.int64)))


def _first_trace(buf: bytes) -> tuple[int, int] | None:
    """Where the first line holding only ``<trace>`` starts and ends in ``buf``."""
    at = buf.find(b"<trace>")
    while at >= 0:
        start = buf.rfind(b"\n", 0, at) + 1
        end = buf.find(b"\n", at)
        if end < 0:
            return None          # the line is not complete yet
        if _TRACE_LINE.fullmatch(buf, start, end):
            return start, end
        at = buf.find(b"<trace>", end)
    return None


def _header(header: bytes, first: bytes) -> int:
    """Check with expat that ``header`` opens a ``<log>`` in UTF-8, with no DOCTYPE,
    trace or event, and that ``first`` opens its first trace; return that line."""
    parser = expat.ParserCreate()
    seen: list[tuple[str, int, int]] = []     # (tag, depth, line) of each trace or event
    depth = [0]
    flaws: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if depth[0] == 0 and tag != "log":
            flaws.append("root")
        if tag.rpartition(":")[2] in ("trace", "event"):
            seen.append((tag, depth[0], parser.CurrentLineNumber))
        depth[0] += 1

    def end(tag: str) -> None:
        depth[0] -= 1

    def declared(version: str, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
            flaws.append("encoding")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.XmlDeclHandler = declared
    parser.StartDoctypeDeclHandler = lambda *_: flaws.append("doctype")
    try:
        parser.Parse(header + first, False)
    except expat.ExpatError:
        raise _NotPlain from None
    line = header.count(b"\n") + 1
    if flaws or seen != [("trace", 1, line)] or depth[0] != 2:
        raise _NotPlain
    return line


def _after_last_trace(buf: bytes) -> int:
    """Where the line after ``buf``'s last complete ``</trace>`` line starts (0: none)."""
    end = len(buf)
    while (at := buf.rfind(b"</trace>", 0, end)) >= 0:
        newline = buf.find(b"\n", at)
        if newline >= 0:
            return newline + 1
        end = at
    return 0


class _Segment:
    """Whole traces of a log (the last segment ends it), checked and taken apart.

    ``at`` holds where each tag starts (every ``<`` starts one); ``depth`` how deep
    each sits (0 outside a trace, 1 in a trace, 2 in an event); ``keys``,
    ``values`` and ``tags`` describe the attributes in order.
    """

    def __init__(self, segment: bytes, line: int, final: bool) -> None:
        if len(segment) >= _MOST:
            raise _NotPlain      # a trace of gigabytes: Arrow's text offsets are 32-bit
        self.segment, self.line = segment, line
        self.bytes = np.frombuffer(segment, np.uint8)
        self.newlines = np.flatnonzero(self.bytes == _NEWLINE)
        self._check_lines()
        self._find_tags(final)
        self._find_attributes()

    def _check_lines(self) -> None:
        """Every line must be blank or one element of the plain layout, in UTF-8."""
        text = self.segment
        if text and not text.endswith(b"\n"):
            text += b"\n"       # the log's last line
        whole = _texts(text, np.array([0, len(text)]))
        try:
            whole.validate(full=True)      # valid UTF-8
        except pa.ArrowInvalid:
            raise _NotPlain from None
        if not pc.all(pc.match_substring_regex(whole, _LINES)).as_py():
            raise _NotPlain
        lead = np.flatnonzero(self.bytes[:-2] == 0xEF)     # U+FFFE, U+FFFF: EF BF BE/BF
        if np.any((self.bytes[lead + 1] == 0xBF) & (self.bytes[lead + 2] >= 0xBE)):
            raise _NotPlain

    def _find_tags(self, final: bool) -> None:
        """What each tag is and how deep it sits, checked to nest as a log's do."""
        self.at = at = np.flatnonzero(self.bytes == _LT)
        first, second = self.bytes[at + 1], self.bytes[at + 2]
        closing = first == ord("/")
        self.open_trace, self.open_event = first == ord("t"), first == ord("e")
        self.close_trace = closing & (second == ord("t"))
        self.close_event = closing & (second == ord("e"))
        close_log = closing & (second == ord("l"))
        self.attribute = ~(self.open_trace | self.open_event | closing)
        step = (self.open_trace.astype(np.int64) + self.open_event
                - self.close_trace - self.close_event)
        self.depth = depth = np.cumsum(step) - step
        nested = (np.all(depth[self.open_trace] == 0) and np.all(depth[self.open_event] == 1)
                  and np.all(depth[self.close_event] == 2)
                  and np.all(depth[self.close_trace] == 1)
                  and np.all(depth[self.attribute] >= 1))
        closed = bool(len(at)) and depth[-1] + step[-1] == 0
        ends_log = int(close_log.sum()) == int(final) and (not final or bool(close_log[-1]))
        if not (nested and closed and ends_log):
            raise _NotPlain
        kinds = first[self.attribute]
        self.tags = _TAG_OF[kinds]
        self.tags[(kinds == ord("i")) & (second[self.attribute] == ord("d"))] = _ID

    def _find_attributes(self) -> None:
        """Keys and values: the text between each attribute line's four quotes."""
        quotes = np.flatnonzero(self.bytes == _QUOTE)
        if len(quotes) != 4 * len(self.tags):
            raise _NotPlain
        bounds = (quotes.reshape(-1, 4) + np.array([1, 0, 1, 0])).ravel()
        pieces = _texts(self.segment, bounds)
        self.keys = pieces.take(np.arange(0, len(bounds), 4))
        self.values = pieces.take(np.arange(2, len(bounds), 4))
        if b"&" in self.segment:
            self.keys, self.values = _unescape(self.keys), _unescape(self.values)
        # what a JSON string must escape: quotes (written &quot;) and backslashes
        self.escaped = b"&quot;" in self.segment or b"\\" in self.segment

    def rows(self, keep: Collection[str] | None) -> pa.Table:
        """The segment's import rows (all columns but ``ord``)."""
        events = _Events(self, keep)
        cases, metadata = self._traces()
        trace_of_event = np.repeat(np.arange(len(cases)), self._events_per_trace())
        return pa.table({
            "line": pa.array(self._lines(self.open_event), pa.int64()),
            "case": pa.array(cases, pa.string()).take(trace_of_event),
            "activity": events.activity,
            "timestamp": events.time,
            "data": events.data,
            "metadata": pa.array(metadata, pa.string()).take(trace_of_event),
        })

    def _lines(self, tags: np.ndarray) -> np.ndarray:
        """The line numbers of the chosen tags."""
        return self.line + np.searchsorted(self.newlines, self.at[tags])

    def _events_per_trace(self) -> np.ndarray:
        events_before = np.cumsum(self.open_event) - self.open_event
        return events_before[self.close_trace] - events_before[self.open_trace]

    def _traces(self) -> tuple[list[str], list[str | None]]:
        """Each trace's case and metadata, from its own attributes (as ``xes`` reads them)."""
        own = self.depth[self.attribute] == 1
        keys = self.keys.filter(own).to_pylist()
        values = self.values.filter(own).to_pylist()
        tags = self.tags[own].tolist()
        for i, tag in enumerate(tags):
            if tag not in (_STRING, _ID):
                values[i] = _typed(_TAGS[tag], keys[i], values[i])
        own_tags = np.flatnonzero(self.attribute)[own]      # which tags they are
        firsts = np.searchsorted(own_tags, np.flatnonzero(self.open_trace)).tolist()
        lasts = np.searchsorted(own_tags, np.flatnonzero(self.close_trace)).tolist()
        cases: list[str] = []
        metadata: list[str | None] = []
        for first, last in zip(firsts, lasts, strict=True):
            attrs = {k: v for k, v in zip(keys[first:last], values[first:last], strict=True)
                     if v is not ABSENT}
            case = attrs.pop("concept:name", None)
            if case is None or case == "":
                raise _NotPlain
            cases.append(str(case))
            metadata.append(_encode(attrs).decode() if attrs else None)
        return cases, metadata


class _Events:
    """The events of a segment: ``activity``, ``time`` and the payload JSON ``data``.

    Payloads are built as ``msgspec`` writes a dict of the event's other attributes
    (text as JSON strings, typed values through ``msgspec`` itself), so both
    readers give the same text.
    """

    def __init__(self, segment: _Segment, keep: Collection[str] | None) -> None:
        mine = segment.depth[segment.attribute] == 2
        self.count = int(segment.open_event.sum())
        self.keys = segment.keys.filter(mine)
        self.values = segment.values.filter(mine)
        self.tags = segment.tags[mine]
        self.escaped = segment.escaped
        opened = np.cumsum(segment.open_event)[segment.attribute][mine]
        self.event = opened - 1 if len(opened) else opened    # each attribute's event
        encoded = pc.dictionary_encode(self.keys)
        codes, known = encoded.indices.to_numpy(), encoded.dictionary.to_pylist()
        self._check_keys_differ(codes, len(known))
        names = _is_key(codes, known, "concept:name")
        times = _is_key(codes, known, "time:timestamp")
        self.activity = self._activity(names)
        self.time = self._time(times)
        self.data = self._data(~names & ~times, keep)

    def _check_keys_differ(self, codes: np.ndarray, distinct: int) -> None:
        """An event repeating a key is left to expat (a dict keeps the last value)."""
        if not len(codes):
            return
        if distinct <= 64:    # a bit a key: the sum of an event's bits is their union
            bits = np.left_shift(np.uint64(1), codes.astype(np.uint64))   # unless one repeats
            starts = np.flatnonzero(np.diff(self.event, prepend=-1))
            repeated = np.any(np.add.reduceat(bits, starts) != np.bitwise_or.reduceat(bits, starts))
        else:
            combined = self.event * distinct + codes
            repeated = len(np.unique(combined)) != len(combined)
        if repeated:
            raise _NotPlain

    def _activity(self, names: np.ndarray) -> pa.Array:
        """Every event's text ``concept:name``, which must be there and not empty."""
        counts = np.bincount(self.event[names], minlength=self.count)
        tags = self.tags[names]
        if (len(counts) != self.count or not np.all(counts == 1)
                or not np.all((tags == _STRING) | (tags == _ID))):
            raise _NotPlain
        activity = self.values.filter(names)
        if pc.any(pc.equal(activity, "")).as_py():
            raise _NotPlain
        return activity

    def _time(self, times: np.ndarray) -> pa.Array:
        """Every event's ``time:timestamp`` as written (null when it has none)."""
        tags = self.tags[times]
        if not np.all((tags == _STRING) | (tags == _ID) | (tags == _DATE)):
            raise _NotPlain
        where = np.full(self.count, -1, np.int64)
        where[self.event[times]] = np.flatnonzero(times)
        return self.values.take(pa.array(where, mask=where < 0))

    def _data(self, rest: np.ndarray, keep: Collection[str] | None) -> pa.Array:
        """Each event's payload: its other (kept) attributes as a JSON object."""
        written: dict[int, str] = {}
        # every typed value is read, kept or not, as the element reader reads them
        typed_at = np.flatnonzero(rest & (self.tags != _STRING) & (self.tags != _ID))
        if len(typed_at):
            written = self._typed_members(typed_at)
            absent = [at for at, member in written.items() if member is None]
            rest[absent] = False
        if keep is not None:
            kept = pc.is_in(self.keys, value_set=pa.array(sorted(keep), pa.string()))
            rest &= kept.to_numpy(zero_copy_only=False)
        chosen = np.flatnonzero(rest)
        keys, values = self.keys.take(chosen), self.values.take(chosen)
        if self.escaped:
            keys, values = _json_text(keys), _json_text(values)
        members = pc.binary_join_element_wise('"', keys, '":"', values, '"', "")
        if written:
            members = _replace(members, chosen, written)
        counts = np.bincount(self.event[chosen], minlength=self.count)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, members), ",")
        return pc.binary_join_element_wise("{", joined, "}", "")

    def _typed_members(self, at: np.ndarray) -> dict[int, str | None]:
        """The typed attributes at ``at``, each as msgspec writes it in an object
        (``"key":value``), or None when its value is absent (a NaN float, left out)."""
        keys = self.keys.take(at).to_pylist()
        values = self.values.take(at).to_pylist()
        written: dict[int, str | None] = {}
        for i, key, text, tag in zip(at.tolist(), keys, values, self.tags[at].tolist(),
                                     strict=True):
            value = _typed(_TAGS[tag], key, text)
            written[i] = None if value is ABSENT else _encode({key: value})[1:-1].decode()
        return written


def _is_key(codes: np.ndarray, known: list[str], key: str) -> np.ndarray:
    """Which of the dictionary-encoded keys (``codes`` into ``known``) are ``key``."""
    return codes == known.index(key) if key in known else np.zeros(len(codes), bool)


def _replace(members: pa.Array, chosen: np.ndarray, written: dict[int, str | None]) -> pa.Array:
    """``members`` (of the attributes ``chosen``) with those in ``written`` replaced."""
    replaced = np.isin(chosen, list(written))
    texts = [written[at] for at in chosen[replaced].tolist()]
    return pc.replace_with_mask(members, pa.array(replaced), pa.array(texts, members.type))


def _texts(data: bytes, bounds: np.ndarray) -> pa.Array:
    """Arrow texts over ``data`` without a copy: text i runs from ``bounds[i]`` to
    ``bounds[i + 1]``."""
    if len(bounds) < 2:
        return pa.array([], pa.string())
    return pa.StringArray.from_buffers(len(bounds) - 1, pa.py_buffer(bounds.astype(np.int32)),
                                       pa.py_buffer(data))


def _typed(tag: str, key: str, text: str) -> Any:
    try:
        return typed(tag, key, text)
    except (ValueError, OverflowError):    # expat's reader names the line
        raise _NotPlain from None


def _unescape(texts: pa.Array) -> pa.Array:
    """Texts with the five predefined XML entities replaced by what they stand for."""
    for entity, char in _ENTITIES:
        texts = pc.replace_substring(texts, entity, char)
    return texts


def _json_text(texts: pa.Array) -> pa.Array:
    """Texts escaped for a JSON string (they hold no control characters)."""
    texts = pc.replace_substring(texts, "\\", "\\\\")
    return pc.replace_substring(texts, '"', '\\"')
