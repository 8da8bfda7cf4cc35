"""Subscriptions: catch up from the log, then deliver each new event live, exactly once.

A ``Subscription`` runs one background thread. The store calls a listener after
every committed write; the thread then reads the log from the position after the
last event it delivered. Positions are handed out in commit order, so reading
"everything after my position" can never skip an event nor deliver one twice.

If the handler raises, the subscription stops: the exception is kept on
``.error``, logged on the ``eventlab.subscription`` logger, and raised again
(wrapped in ``SubscriptionError``) by ``wait_until`` and by ``close``. So does a
failure to read the log (an event that no longer decodes, say), reported as
such: the handler never saw that event. Closing the store ends its
subscriptions quietly, within a moment.

>>> import eventlab as el
>>> from eventlab.examples.bank import Opened
>>> store = el.InMemoryEventStore()
>>> seen = []
>>> with store.subscribe(seen.append) as sub:
...     _ = store.append("acc-1", [Opened("ada")])
...     sub.wait_until(store.head(), timeout=5)
True
>>> [e.type for e in seen]
['Opened']
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..envelope import RecordedEvent
from ..errors import EventlabError, InvalidInputError, StoreClosedError
from .rows import check_position

log = logging.getLogger("eventlab.subscription")

Handler = Callable[[RecordedEvent], Any]


class SubscriptionError(EventlabError):
    """A subscription stopped at ``position``: its handler raised, or reading the log failed.

    ``cause`` is the exception (also ``__cause__``); ``event`` is the event the
    handler failed on (``None`` when reading failed); ``reading`` says which.
    """

    def __init__(self, cause: BaseException, event: RecordedEvent | None, position: int,
                 reading: bool = False) -> None:
        self.cause, self.event, self.position, self.reading = cause, event, position, reading
        if reading:
            what = f"subscription stopped reading the log after position {position}"
        else:
            what = "subscription handler failed"
            if event is not None:
                what += (f" on position {event.position} (stream {event.stream_id!r}, "
                         f"version {event.version}, type {event.type!r})")
        super().__init__(f"{what}: {type(cause).__name__}: {cause}")

    def __reduce__(self):
        return (type(self), (self.cause, self.event, self.position, self.reading))


class Subscription:
    """Deliver the log from ``from_position`` on to ``handler``, then every new append.

    ``types`` keeps only events of those type names (or classes). ``position``
    is the last log position the subscription has dealt with (delivered, or
    skipped by the ``types`` filter). ``poll_interval`` bounds how long a write
    made through another store object on the same file can go unnoticed.

    Usually made by ``store.subscribe(handler, from_position=..., types=...)``.
    """

    def __init__(self, store: Any, handler: Handler, from_position: int = 1,
                 types: Iterable[Any] | None = None, *, poll_interval: float | None = 0.5,
                 name: str | None = None, on_idle: Callable[[], Any] | None = None,
                 on_close: Callable[[], Any] | None = None) -> None:
        check_position("from_position", from_position, 1)
        if not callable(handler):
            raise InvalidInputError(f"handler must be callable, got {handler!r}")
        self.store = store
        self.handler = handler
        self.types = None if types is None else list(
            [types] if isinstance(types, (str, type)) else types)
        self.position = from_position - 1
        self.error: BaseException | None = None
        self.failed_event: RecordedEvent | None = None
        self.failed_reading = False
        self.poll_interval = poll_interval
        self._on_idle, self._on_close = on_idle, on_close
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._closing = False
        self._done = False
        store.add_listener(self._notified)
        self._thread = threading.Thread(
            target=self._run, name=name or f"eventlab-subscription-{id(self):x}", daemon=True)
        self._thread.start()

    # -- the delivery loop -------------------------------------------------------------

    def _notified(self, head: int) -> None:
        self._wake.set()

    def _run(self) -> None:
        try:
            while not self._closing:
                # Clear before reading: a write that lands during the read sets it
                # again, so the next wait returns at once and nothing is missed.
                self._wake.clear()
                if self.store.head() > self.position:
                    self._deliver_available()
                    if self._done:
                        return
                    if self._on_idle is not None and not self._idle():
                        return
                self._wake.wait(self.poll_interval)
        except BaseException as exc:  # reading the log failed, not the handler
            if not (isinstance(exc, StoreClosedError) or self.store.closed):
                self._fail(exc, None, reading=True)
            # else the store went away: nothing more can come
        finally:
            self.store.remove_listener(self._notified)
            self._finish()

    def _idle(self) -> bool:
        """Run the idle hook (a projection's refresh, say); False when it failed."""
        try:
            self._on_idle()
        except BaseException as exc:
            if isinstance(exc, StoreClosedError) or self.store.closed:
                raise
            self._fail(exc, None)
            return False
        return True

    def _deliver_available(self) -> None:
        head = self.store.head()
        handler = self.handler
        events = self.store.read_all(from_position=self.position + 1, types=self.types)
        while not self._closing:
            event = next(events, None)   # a failure here is the log's: raised to _run
            if event is None:
                break
            try:
                handler(event)
            except BaseException as exc:
                self._fail(exc, event)
                return
            with self._progress:
                self.position = event.position
                self._progress.notify_all()
        if self._closing:
            return
        # Events filtered out by ``types`` up to the head read before are dealt with too.
        if head > self.position:
            with self._progress:
                self.position = head
                self._progress.notify_all()

    def _fail(self, exc: BaseException, event: RecordedEvent | None,
              reading: bool = False) -> None:
        # Report first: whoever waits on this subscription wakes up once it is marked done.
        log.error("subscription stopped after position %d: %s", self.position,
                  SubscriptionError(exc, event, self.position, reading), exc_info=exc)
        with self._progress:
            self.error, self.failed_event, self.failed_reading = exc, event, reading
            self._done = True
            self._progress.notify_all()

    def _finish(self) -> None:
        with self._progress:
            self._done = True
            self._progress.notify_all()
        if self._on_close is not None and not self.store.closed:  # a closed store takes nothing
            try:
                self._on_close()
            except Exception as exc:  # reported, and kept if nothing else was
                log.error("subscription close hook failed: %s", exc, exc_info=exc)
                if self.error is None:
                    self.error = exc

    # -- the handle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the subscription delivers events (not closed, not failed)."""
        return not self._done

    def raise_error(self) -> None:
        """Raise ``SubscriptionError`` (from the handler's exception) if the handler failed."""
        if self.error is not None:
            raise SubscriptionError(self.error, self.failed_event, self.position,
                                    self.failed_reading) from self.error

    def wait_until(self, position: int | None = None, timeout: float | None = None) -> bool:
        """Block until every event up to ``position`` (default: the head now) is delivered.

        Returns True when it got there, False on timeout or if the subscription
        was closed first; raises ``SubscriptionError`` if the handler failed.
        """
        target = self.store.head() if position is None else position
        with self._progress:
            self._progress.wait_for(lambda: self.position >= target or self._done, timeout)
        self.raise_error()
        return self.position >= target

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop delivering and wait for the thread; raise ``SubscriptionError`` if it failed.

        Closing twice is harmless; the error is raised each time it is asked for.
        """
        self._closing = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self.raise_error()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        # the block's own exception wins; a handler error stays on .error
        with contextlib.suppress(SubscriptionError):
            self.close()

    def __repr__(self) -> str:
        status = "failed" if self.error is not None else "running" if self.running else "closed"
        return f"<Subscription {status} at position {self.position}>"


__all__ = ["Subscription", "SubscriptionError"]
