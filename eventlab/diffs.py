"""States as table rows, and what changed between two states.

``state_record`` turns a state (a dataclass, a mapping, a named tuple or msgspec
Struct, or a plain value) into columns; ``diff`` walks two states field by
field, into nested dicts and lists.

>>> diff({"balance": 10.0, "tags": ["a"]}, {"balance": 15.0, "tags": ["a", "b"]})
Diff(balance: 10.0 -> 15.0, tags[1]: <missing> -> 'b')
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd


# -- states as table rows ------------------------------------------------------------

def state_record(state: Any) -> dict[Any, Any]:
    """A state as columns: dataclass fields, dict keys, or a single ``state`` column.

    Mutable values are copied, so a row never changes when the state later does.
    """
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return {f.name: _copied(getattr(state, f.name)) for f in dataclasses.fields(state)}
    if isinstance(state, Mapping):
        return {k: _copied(v) for k, v in state.items()}
    fields = getattr(state, "__struct_fields__", None) or getattr(state, "_fields", None)
    if isinstance(fields, tuple):  # a msgspec Struct or a namedtuple
        return {f: _copied(getattr(state, f)) for f in fields}
    return {"state": _copied(state)}


def _copied(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (list, dict, set)) else value


def state_row(envelope: dict[str, Any], state: Any) -> dict[Any, Any]:
    """``envelope`` then ``state``'s columns (one named like an envelope key gets ``state_``)."""
    row = dict(envelope)
    for key, value in state_record(state).items():
        row[f"state_{key}" if key in envelope else key] = value
    return row


# -- diffs ------------------------------------------------------------------------------

class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: Stands for the side of a ``Change`` where a key, field or item does not exist.
MISSING: Any = _Missing()


class Change(NamedTuple):
    """One changed value: ``old`` and ``new`` (``MISSING`` when added or removed)."""

    old: Any
    new: Any


class Diff(Mapping[str, Change]):
    """What changed between two states, as ``{path: Change(old, new)}``.

    Paths name fields and keys with dots (``owner.name``), list items with
    brackets (``items[2]``); ``""`` is the whole state when it is a plain value.
    ``fields`` is the set of top-level names that changed (handy to highlight).

    >>> d = diff({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3], "c": 0})
    >>> dict(d)
    {'b[1]': Change(old=2, new=3), 'c': Change(old=<missing>, new=0)}
    >>> sorted(d.fields)
    ['b', 'c']
    """

    def __init__(self, changed: dict[str, Change]) -> None:
        self.changed = changed

    def __getitem__(self, path: str) -> Change:
        return self.changed[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.changed)

    def __len__(self) -> int:
        return len(self.changed)

    @property
    def fields(self) -> set[str]:
        return {_top(path) for path in self.changed}

    def __repr__(self) -> str:
        body = ", ".join(f"{path or '(state)'}: {c.old!r} -> {c.new!r}"
                         for path, c in self.changed.items())
        return f"Diff({body})"

    def _repr_html_(self) -> str:
        import html

        if not self.changed:
            return "<p>no changes</p>"
        rows = "".join(
            f"<tr><td><code>{html.escape(path or '(state)')}</code></td>"
            f"<td>{html.escape(repr(c.old))}</td><td>{html.escape(repr(c.new))}</td></tr>"
            for path, c in self.changed.items())
        return f"<table><tr><th>path</th><th>before</th><th>after</th></tr>{rows}</table>"


def _top(path: str) -> str:
    for i, ch in enumerate(path):
        if ch in ".[" and i:
            return path[:i]
    return path


def diff(before: Any, after: Any) -> Diff:
    """What changed from ``before`` to ``after``, field by field, into nested dicts and lists.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class S:
    ...     n: int
    ...     tags: tuple = ()
    >>> diff(S(1, ("a",)), S(2, ("a", "b")))
    Diff(n: 1 -> 2, tags[1]: <missing> -> 'b')
    """
    changed: dict[str, Change] = {}
    _walk(before, after, "", changed)
    return Diff(changed)


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays whose == is elementwise
        return False


def _walk(a: Any, b: Any, path: str, out: dict[str, Change]) -> None:
    if _equal(a, b):
        return
    if (dataclasses.is_dataclass(a) and type(a) is type(b) and not isinstance(a, type)):
        for f in dataclasses.fields(a):
            _walk(getattr(a, f.name), getattr(b, f.name), _join(path, f.name), out)
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in [*a, *(k for k in b if k not in a)]:
            _walk(a.get(key, MISSING), b.get(key, MISSING), _join(path, key), out)
    elif _is_sequence(a) and _is_sequence(b):
        for i in range(max(len(a), len(b))):
            _walk(a[i] if i < len(a) else MISSING, b[i] if i < len(b) else MISSING,
                  f"{path}[{i}]", out)
    else:
        out[path] = Change(a, b)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and not hasattr(value, "_fields")


def _join(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def state_frame(pd: Any, frames: list[pd.DataFrame], envelope: Sequence[str], initial: Any
                ) -> pd.DataFrame:
    """Frames of ``state_row``s as one; with none, the columns ``initial``'s rows would have."""
    if frames:
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return pd.DataFrame(columns=list(state_row(dict.fromkeys(envelope), initial)))


__all__ = ["MISSING", "Change", "Diff", "diff", "state_frame", "state_record", "state_row"]
