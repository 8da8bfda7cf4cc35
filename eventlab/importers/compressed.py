"""Log files gzipped or not, told apart by what they hold rather than by their name.

>>> import gzip, io
>>> content(io.BytesIO(gzip.compress(b"<log/>"))).read()
b'<log/>'
>>> content(io.BytesIO(b"<log/>")).read()
b'<log/>'
"""

from __future__ import annotations

import gzip
from typing import BinaryIO

_MAGIC = b"\x1f\x8b"


def is_gzip(raw: BinaryIO) -> bool:
    """True when the binary file ``raw`` starts like gzip; leaves it at its start."""
    found = raw.read(2) == _MAGIC
    raw.seek(0)
    return found


def content(raw: BinaryIO) -> BinaryIO:
    """What ``raw`` holds: decompressed when it is gzipped, itself when it is not."""
    return gzip.GzipFile(fileobj=raw) if is_gzip(raw) else raw
