"""State to and from JSON: the one codec for aggregate snapshots and projector checkpoints.

A state goes out as plain JSON (dataclasses as objects, UUIDs and times as
text) and comes back as the type it was: a dataclass from its class, a typed
container (``dict[int, float]``) from the type given, anything else as JSON
gave it. A stored state that no longer fits (a dataclass whose fields changed,
values of the wrong kind) raises ``SerializationError``: the caller replays
instead.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Balance:
...     owner: str
...     amount: float
>>> text = encode_state(Balance("ada", 10.0), "a balance")
>>> text
'{"owner":"ada","amount":10.0}'
>>> decode_state(text, Balance)
Balance(owner='ada', amount=10.0)
>>> decode_state('{"owner":"ada"}', Balance)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventlab.errors.SerializationError: the stored state has fields ['owner'], Balance has ...
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from .errors import SerializationError
from .events import dumps, loads, to_builtins

_AS_JSON_GIVES = (dict, list, int, float, str, bool, type(None))


def encode_state(state: Any, what: str, *, check_keys: bool = False) -> str:
    """``state`` as JSON text; ``what`` names it in errors.

    With ``check_keys``, a dict state (or a dict directly inside one) whose keys
    are not all ``str`` is refused: JSON would bring them back as text.
    """
    if check_keys:
        _check_keys(state, what)
    try:
        plain = to_builtins(state)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"{what} cannot be stored as JSON: {exc}") from exc
    return dumps(plain, what)


def decode_state(text: str, target: Any = None) -> Any:
    """The state ``text`` holds, as ``target`` (a class or typed container; None: plain
    JSON values). Raises ``SerializationError`` when it does not fit ``target``."""
    try:
        data = loads(text)
        if target is None or target in _AS_JSON_GIVES:
            return data
        if dataclasses.is_dataclass(target) and isinstance(data, dict):
            fields = [f.name for f in dataclasses.fields(target)]
            if set(data) != set(fields):
                raise SerializationError(
                    f"the stored state has fields {sorted(data)}, {target.__name__} has "
                    f"{sorted(fields)}")
        return msgspec.convert(data, target, strict=False)
    except (msgspec.MsgspecError, TypeError, ValueError) as exc:
        raise SerializationError(f"the stored state does not fit {target!r}: {exc}") from exc


def _check_keys(state: Any, what: str) -> None:
    if not isinstance(state, dict):
        return
    found = next((k for k in state if not isinstance(k, str)), None)
    if found is None:
        for value in state.values():
            if isinstance(value, dict):
                found = next((k for k in value if not isinstance(k, str)), None)
                if found is not None:
                    break
    if found is not None:
        kind = type(found).__name__
        raise SerializationError(
            f"{what} has a {kind} dict key ({found!r}); JSON would bring it back as "
            f"text, so the resumed state would mix key types. Set state_type = "
            f"dict[{kind}, ...] (e.g. dict[{kind}, float]) or use str keys")
