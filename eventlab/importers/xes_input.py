"""What both XES readers share: the file's decompressed chunks, read ahead in a
thread, and attribute values typed by their tag.

>>> typed("int", "n", "12"), typed("boolean", "b", " TRUE "), typed("date", "d", "2024-01-01")
(12, True, '2024-01-01T00:00:00.000000Z')
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .compressed import content
from .errors import LogImportError

ABSENT = object()   # an attribute that is there but holds no value


class InfiniteError(ValueError):
    """A float attribute's value is infinite, which JSON cannot hold."""


def read_chunks(path: Path, size: int, progress: Callable[[int], None] | None,
                digest: Any) -> Iterator[bytes]:
    """The decompressed content of ``path`` in chunks of ``size`` bytes, then an empty
    one; each is hashed into ``digest`` and the bytes read so far told to ``progress``.

    A helper thread reads (decompresses and hashes) the next chunk while the caller
    works on this one: zlib and hashlib let go of the interpreter as they work.
    """
    raw = open(path, "rb")  # noqa: SIM115 - closed below, after the gzip layer
    try:
        stream = content(raw)

        def read() -> tuple[bytes, int]:
            try:
                chunk = stream.read(size)
            except (EOFError, OSError, zlib.error) as exc:
                raise LogImportError(
                    f"{path.name}: the compressed file is damaged or cut short ({exc}); "
                    "nothing was imported") from None
            if digest is not None:
                digest.update(chunk)
            return chunk, raw.tell()

        with ThreadPoolExecutor(max_workers=1) as ahead:
            coming = ahead.submit(read)
            while True:
                chunk, done = coming.result()
                if chunk:
                    coming = ahead.submit(read)
                if progress is not None:
                    progress(done)
                yield chunk
                if not chunk:
                    break
    finally:
        raw.close()


def typed(tag: str, key: str, text: str) -> Any:
    """The value of a ``string``, ``date``, ``int``, ``float``, ``boolean`` or ``id``
    attribute. Dates other than the event time become UTC ISO text; a float that is
    NaN is ``ABSENT`` (left out, as in a CSV). Raises ``ValueError`` or
    ``OverflowError`` when ``text`` is not a valid ``tag``, and ``InfiniteError``
    for an infinite float.

    >>> typed("int", "n", "12"), typed("boolean", "b", " TRUE "), typed("date", "d", "2024-01-01")
    (12, True, '2024-01-01T00:00:00.000000Z')
    >>> typed("float", "x", "NaN") is ABSENT
    True
    """
    if tag == "int":
        return int(text)
    if tag == "float":
        number = float(text)
        if math.isnan(number):
            return ABSENT
        if math.isinf(number):
            raise InfiniteError(text)
        return number
    if tag == "boolean":
        return text.strip().lower() == "true"
    if tag == "date" and key != "time:timestamp":
        return iso_utc(text)
    return text


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
