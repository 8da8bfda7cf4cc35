"""PostgreSQL URLs: telling them from file names, hiding their passwords, their schema.

>>> is_url("postgresql://ada@db/log"), is_url("log.duckdb")
(True, False)
>>> redact("postgresql://ada:secret@db.example:5432/log")
'postgresql://ada:***@db.example:5432/log'
>>> split_schema("postgresql://ada@db/log?schema=bank&sslmode=require")
('postgresql://ada@db/log?sslmode=require', 'bank')
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SCHEMES = ("postgresql://", "postgres://")


def is_url(target: Any) -> bool:
    """True when ``target`` names a PostgreSQL database rather than a file."""
    return isinstance(target, str) and target.startswith(_SCHEMES)


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``: all that errors and reprs show."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "postgresql://…"
    if password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe(target: Any) -> str:
    """A store's location as it may be printed: a file name, or a URL without password."""
    return redact(target) if is_url(target) else str(target)


def split_schema(url: str) -> tuple[str, str | None]:
    """The URL without eventlab's own ``schema=`` query parameter, and that schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    if schema is None:
        return url, None
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema
