"""Snapshots and checkpoints: the second small interface a store keeps next to its events.

An aggregate's snapshot is its state (JSON text) at a version of one stream,
under a key naming the aggregate; a projector's checkpoint is its position in
the log with its state, under the projector's name. A backend keeps both in the
same database as the events, so what it holds survives with the log. The
state's JSON is made and read above the store, by ``eventlab.state``.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> store.save_checkpoint("totals", 5, '{"n": 5}')
>>> store.load_checkpoint("totals")
(5, '{"n": 5}')
>>> store.save_checkpoint("totals", 3, None)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventlab.errors.InvalidInputError: checkpoint 'totals' is at position 5; it cannot move back ...
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any

from .rows import check_checkpoint_forward, check_position, check_stream_id


class Records(ABC):
    """Save and load snapshots and checkpoints; a backend provides the four ``_get``
    and ``_put`` hooks (and the ``_writing`` block and ``_check_open`` of its store)."""

    def save_snapshot(self, stream_id: str, key: str, version: int, state: str) -> None:
        """Keep an aggregate's state (JSON text) at a version, replacing the older one."""
        check_stream_id(stream_id)
        check_position("version", version)
        with self._writing():
            self._check_open()
            self._put_snapshot(stream_id, key, version, state)

    def load_snapshot(self, stream_id: str, key: str) -> tuple[int, str] | None:
        """The latest snapshot ``(version, state_json)`` for that stream and key."""
        self._check_open()
        return self._get_snapshot(stream_id, key)

    def load_checkpoint(self, name: str) -> tuple[int, str | None] | None:
        """A named projector's stored ``(position, state_json)``, if any."""
        self._check_open()
        return self._get_checkpoint(name)

    def save_checkpoint(self, name: str, position: int, state: str | None,
                        reset: bool = False) -> None:
        """Store a projector's position and state together, atomically.

        Checkpoints only move forward: an older position raises unless ``reset``.
        """
        check_position("position", position)
        with self._writing():
            self._check_open()
            if not reset:
                stored = self._get_checkpoint(name)
                check_checkpoint_forward(name, stored[0] if stored else None, position)
            self._put_checkpoint(name, position, state)

    # -- what a backend provides ---------------------------------------------------------

    @abstractmethod
    def _writing(self) -> contextlib.AbstractContextManager[Any]: ...

    @abstractmethod
    def _check_open(self) -> None: ...

    @abstractmethod
    def _put_snapshot(self, stream_id: str, key: str, version: int, state: str) -> None: ...

    @abstractmethod
    def _get_snapshot(self, stream_id: str, key: str) -> tuple[int, str] | None: ...

    @abstractmethod
    def _put_checkpoint(self, name: str, position: int, state: str | None) -> None: ...

    @abstractmethod
    def _get_checkpoint(self, name: str) -> tuple[int, str | None] | None: ...
