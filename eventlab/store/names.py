"""The names eventlab keeps for itself in a database, and SQL quoting.

Every table and view eventlab owns starts with ``eventlab_`` (or ``_eventlab_``
for what lives only during a statement), except the views ``events`` and
``events_flat`` that SQL is written against. A name a user gives (a SQL
projection's table, say) must not resolve to any of them, and database names
compare without case: ``Eventlab_Events`` *is* ``eventlab_events``.

>>> quote('a"b')
'"a""b"'
>>> check_user_table("totals", "a SQL projection")
'totals'
>>> check_user_table("Events", "a SQL projection")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventlab.errors.InvalidInputError: a SQL projection cannot be named 'Events': ...
"""

from __future__ import annotations

from ..errors import InvalidInputError

#: The log's table; never named outside the store package.
TABLE = "eventlab_events"
SNAPSHOTS = "eventlab_snapshots"
CHECKPOINTS = "eventlab_checkpoints"
META = "eventlab_meta"
#: The views SQL is written against: the log with JSON columns, and one column per field.
EVENTS_VIEW = "events"
FLAT_VIEW = "events_flat"

_RESERVED_VIEWS = {EVENTS_VIEW, FLAT_VIEW}
_RESERVED_PREFIXES = ("eventlab_", "_eventlab_")


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as a quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def is_reserved(name: str) -> bool:
    """True when ``name``, in any case, is (or may become) one of eventlab's own."""
    lowered = name.lower()
    return lowered in _RESERVED_VIEWS or lowered.startswith(_RESERVED_PREFIXES)


def check_user_table(name: str, what: str) -> str:
    """``name`` if a user may give it to a table of their own; else ``InvalidInputError``."""
    if is_reserved(name):
        lowered = name.lower()
        owner = (f"the view {lowered}" if lowered in _RESERVED_VIEWS
                 else "names starting with eventlab_ or _eventlab_")
        raise InvalidInputError(
            f"{what} cannot be named {name!r}: that name is eventlab's own ({owner}); "
            "names compare without case")
    return name
