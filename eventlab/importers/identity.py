"""Deterministic event ids for imported events, so importing a log again is a safe retry.

Every imported event gets a UUID version 5 id: ``uuid5(namespace, name)``. The
namespace stands for *this import*: the source and the options that shape the
events (stream prefix, mapped columns, kept attributes). The name stands for
the event within it.

* A file (XES, CSV, Parquet, or a directory of Parquet files) is known by a
  BLAKE2b digest of its content, and an event by its row number in the file.
  A gzipped file's content is what it decompresses to, so the same log plain,
  gzipped or gzipped again (another level, another time in its header) is
  one log. Reading the bytes once more is cheap next to parsing them, and the
  digest does not care where the file lives or when it was touched: the same
  content gives the same ids, and content that differs in any byte new ones.
* A DataFrame or Arrow table has no such identity, so an event's name is its
  own content (case, activity, timestamp, payload, metadata) plus its row number.
* Rows that carry an ``event_id`` (``store.to_df()`` frames and their Parquet
  exports) keep it; with a ``stream_prefix`` the kept id is mapped through the
  namespace instead, so the copy never shares ids with the original.
* An OCEL 2.0 log's events are named by what the import makes of them (object
  type, object, OCEL event id, type, time, payload), not by the file's bytes,
  so its JSON, XML and SQLite forms give the same ids (see ``ocel``).

Events whose ids a store already holds, in place, are not written again (see
``stored``); a log that grew since its last import adds only its new events
when its earlier rows keep their ids (a DataFrame with rows added at the end).

>>> ns = import_namespace("file:abc", "", {"case": "case_id"}, None)
>>> ns == import_namespace("file:abc", "", {"case": "case_id"}, None)
True
>>> ns == import_namespace("file:abc", "claim-", {"case": "case_id"}, None)
False
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .compressed import content, is_gzip

#: The root namespace of every imported event id (itself ``uuid5(NAMESPACE_URL, ...)``).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "eventlab:import")

_CHUNK = 1 << 20


def content_digest() -> Any:
    """A fresh digest of a log's content: feed it every decompressed chunk, then ask
    ``digest_key`` for the key (``file_key`` does this itself)."""
    return hashlib.blake2b(digest_size=20)


def digest_key(digest: Any) -> str:
    return "file:" + digest.hexdigest()


def file_key(path: str | os.PathLike[str]) -> str:
    """A file's (or a directory's Parquet files') identity: a digest of its content.

    A directory is read file by file in sorted order, each file's path within
    the directory counting too (Hive partitions live in the paths); files and
    folders whose names start with ``.`` or ``_`` are skipped, as Parquet
    readers skip them.
    """
    path = Path(path)
    digest = content_digest()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
            part.startswith((".", "_")) for part in p.relative_to(path).parts))
    else:
        files = [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as raw:
            handle = content(raw)
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest_key(digest)


def compressed_key(path: str | os.PathLike[str]) -> str | None:
    """How eventlab 0.1 knew a gzipped file (by its compressed bytes); None when the
    file is not gzipped. An import of such a file checks whether the store holds
    that import already, and keeps its ids if so."""
    digest = content_digest()
    with open(path, "rb") as raw:
        if not is_gzip(raw):
            return None
        while chunk := raw.read(_CHUNK):
            digest.update(chunk)
    return digest_key(digest)


def import_namespace(source: str, prefix: str, mapping: dict[str, str],
                     attributes: Collection[str] | None) -> uuid.UUID:
    """The namespace of one import: its source and every option that shapes its events."""
    key = json.dumps({"source": source, "prefix": prefix, "mapping": mapping,
                      "attributes": None if attributes is None else sorted(attributes)},
                     sort_keys=True)
    return uuid.uuid5(NAMESPACE, key)


def sha1_sql(namespace: str, name: str) -> str:
    """A DuckDB expression for the SHA-1 (hex) behind ``uuid5(namespace, name)``.

    ``namespace`` is an SQL expression for the namespace's 16 bytes (a BLOB),
    ``name`` one for the name as text; a NULL name gives NULL.
    """
    return f"sha1({namespace} || encode({name}))"


def uuid_from_sha1_sql(digest: str) -> str:
    """A DuckDB expression turning a SHA-1 hex column into UUID 5 text (version and
    variant bits set as RFC 9562 says), equal to ``str(uuid.uuid5(...))``."""
    return (f"(substr({digest}, 1, 8) || '-' || substr({digest}, 9, 4) || '-5' "
            f"|| substr({digest}, 14, 3) || '-' "
            f"|| substr('89ab89ab89ab89ab', strpos('0123456789abcdef', "
            f"substr({digest}, 17, 1)), 1) || substr({digest}, 18, 3) || '-' "
            f"|| substr({digest}, 21, 12))")
