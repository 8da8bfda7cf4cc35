"""The errors eventlab raises: one family, each naming what went wrong."""

from __future__ import annotations

from typing import Any


class EventlabError(Exception):
    """Base class of every error eventlab raises on purpose."""


class InvalidInputError(EventlabError, ValueError):
    """An argument (stream id, expected version, range, metadata...) is not acceptable.

    The message names the argument; nothing was written.
    """


class ConcurrencyError(EventlabError):
    """An append's expected version did not match the stream; nothing was written.

    >>> err = ConcurrencyError("account-1", 2, 3)
    >>> err.stream_id, err.expected, err.actual
    ('account-1', 2, 3)
    """

    def __init__(self, stream_id: str, expected: Any, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r}: expected version {_describe(expected)}, "
            f"but the stream is at version {actual}"
        )

    def __reduce__(self):  # keep pickling (multiprocessing, nbclient) working
        return (type(self), (self.stream_id, self.expected, self.actual))


class DomainError(EventlabError):
    """Base class for a command an aggregate rejects (raise it from ``handle``)."""


class SerializationError(EventlabError):
    """An event, its metadata or a state could not be turned into JSON (or back)."""


class StoreLockedError(EventlabError):
    """The DuckDB file is held read-write by another process."""


class ReadOnlyStoreError(EventlabError):
    """A write was attempted on a store opened with ``read_only=True``."""


class StoreClosedError(EventlabError):
    """The store was closed and cannot be used any more."""


class ApplyError(EventlabError):
    """An ``apply`` raised while folding an event; names the event that broke it.

    >>> str(ApplyError("Account.apply", ValueError("boom"), stream_id="a-1", version=3,
    ...                type="Deposited"))
    "Account.apply failed on stream 'a-1', version 3, type 'Deposited': ValueError: boom"
    """

    def __init__(self, where: str, cause: BaseException, *, stream_id: str | None = None,
                 version: int | None = None, position: int | None = None,
                 type: str | None = None) -> None:
        self.where, self.cause = where, cause
        self.stream_id, self.version, self.position, self.type = stream_id, version, position, type
        parts = [f"stream {stream_id!r}" if stream_id is not None else "",
                 f"version {version}" if version is not None else "",
                 f"position {position}" if position is not None else "",
                 f"type {type!r}" if type is not None else ""]
        detail = ", ".join(p for p in parts if p)
        super().__init__(f"{where} failed on {detail}: {type_name(cause)}: {cause}")

    def __reduce__(self):
        return (_rebuild_apply_error, (self.where, self.cause, self.stream_id, self.version,
                                        self.position, self.type))


class ReactionError(ApplyError):
    """A reactor stopped on an event: ``react`` raised, or the command it asked for
    failed with something other than a ``DomainError`` (a bug, not a refusal)."""

    def __reduce__(self):
        return (_rebuild_reaction_error, (self.where, self.cause, self.stream_id,
                                           self.version, self.position, self.type))


def _rebuild_reaction_error(where, cause, stream_id, version, position, type_):
    return ReactionError(where, cause, stream_id=stream_id, version=version,
                         position=position, type=type_)


def _rebuild_apply_error(where, cause, stream_id, version, position, type_):
    return ApplyError(where, cause, stream_id=stream_id, version=version, position=position,
                      type=type_)


def type_name(value: object) -> str:
    return type(value).__name__


def _describe(expected: Any) -> str:
    return repr(expected) if isinstance(expected, int) else str(expected)
