"""ConcurrencyLab: two writers race on one stream; see who wins and what the loser gets.

Both writers load the stream at the same version, decide on a command with
the aggregate, then append with the expected-version mode chosen for each.
The first to commit wins; the other either appends too (``ANY`` lets it, and
may break an invariant) or gets a ``ConcurrencyError`` and writes nothing.

>>> lab = ConcurrencyLab()               # the bank: balance 100, two withdrawals
>>> lab.run().winner, type(lab.result.error).__name__
('A', 'ConcurrencyError')
>>> lab.mode_b = "ANY"
>>> lab.run().loser is None, lab.result.final_state.balance
(True, -20.0)
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w

from .. import ANY, NO_STREAM, STREAM_EXISTS, ConcurrencyError, DomainError, connect
from ..aggregate import Aggregate
from ..errors import InvalidInputError
from ..store.base import EventStore
from .render import event_card, state_table
from .view import View

#: The expected-version modes a writer can use; "read version" is the version it loaded.
MODES = ("read version", "ANY", "NO_STREAM", "STREAM_EXISTS")


@dataclass
class WriterOutcome:
    """What happened to one writer: the events it appended, or the error it got."""

    name: str
    mode: str
    expected: Any
    events: list[Any] = field(default_factory=list)
    version: int | None = None
    error: Exception | None = None

    @property
    def appended(self) -> bool:
        return self.error is None and self.version is not None


@dataclass
class RaceResult:
    """The outcome of one race."""

    outcomes: dict[str, WriterOutcome]
    order: tuple[str, str]
    final_state: Any
    final_version: int
    log: list[Any]

    @property
    def winner(self) -> str | None:
        """The first writer whose append landed (None if neither did)."""
        return next((n for n in self.order if self.outcomes[n].appended), None)

    @property
    def loser(self) -> str | None:
        """The writer that got an error (None when both appended)."""
        return next((n for n in self.order if self.outcomes[n].error is not None), None)

    @property
    def error(self) -> Exception | None:
        """The loser's error (usually a ``ConcurrencyError``)."""
        return self.outcomes[self.loser].error if self.loser else None


def _bank() -> tuple[Aggregate, list[Any], Any, Any]:
    from ..examples.bank import Account, Deposited, Opened, Withdraw

    return Account(), [Opened("ada"), Deposited(100.0)], Withdraw(70), Withdraw(50)


class ConcurrencyLab(View):
    """Two simulated writers on one stream with chosen expected-version modes.

    ``history`` is written first; then writers A and B both load the stream,
    handle ``command_a`` / ``command_b`` and append in ``first`` order. Each
    ``run()`` starts from a fresh store made by ``store_factory`` (an
    in-memory DuckDB by default). ``mode_a``, ``mode_b`` and ``first`` are
    settable from Python and from the widget.
    """

    def __init__(self, aggregate: Aggregate | None = None, history: Sequence[Any] | None = None,
                 command_a: Any = None, command_b: Any = None, *,
                 mode_a: str = "read version", mode_b: str = "read version",
                 first: str = "A", stream_id: str = "account-1",
                 store_factory: Callable[[], EventStore] = connect) -> None:
        if aggregate is None:
            aggregate, default_history, default_a, default_b = _bank()
            history = default_history if history is None else history
            command_a = default_a if command_a is None else command_a
            command_b = default_b if command_b is None else command_b
        if command_a is None or command_b is None:
            raise InvalidInputError(
                "give command_a and command_b: what each writer asks the aggregate")
        self.aggregate = aggregate
        self.history = list(history or [])
        self.commands = {"A": command_a, "B": command_b}
        self.stream_id = stream_id
        self.store_factory = store_factory
        self.store: EventStore | None = None
        self.result: RaceResult | None = None
        self._modes = {n: w.Dropdown(options=MODES, description=f"writer {n}") for n in "AB"}
        self._first = w.ToggleButtons(options=["A", "B"], description="commits first")
        self._button = w.Button(description="race", button_style="primary", icon="play")
        self._out = w.HTML()
        self.mode_a, self.mode_b, self.first = mode_a, mode_b, first
        self._button.on_click(lambda _: self.run())
        self.widget = w.VBox([
            w.HTML(f"<b>ConcurrencyLab</b>: A runs {html.escape(repr(command_a))}, "
                   f"B runs {html.escape(repr(command_b))} on <code>{stream_id}</code>"),
            w.HBox([self._modes["A"], self._modes["B"]]),
            w.HBox([self._first, self._button]), self._out])
        self.run()

    # -- Python-side settings -----------------------------------------------------------

    @property
    def mode_a(self) -> str:
        return self._modes["A"].value

    @mode_a.setter
    def mode_a(self, mode: str) -> None:
        self._modes["A"].value = _check_mode(mode)

    @property
    def mode_b(self) -> str:
        return self._modes["B"].value

    @mode_b.setter
    def mode_b(self, mode: str) -> None:
        self._modes["B"].value = _check_mode(mode)

    @property
    def first(self) -> str:
        return self._first.value

    @first.setter
    def first(self, name: str) -> None:
        if name not in ("A", "B"):
            raise InvalidInputError(f"first must be 'A' or 'B', got {name!r}")
        self._first.value = name

    @property
    def winner(self) -> str | None:
        return self.result.winner if self.result else None

    @property
    def error(self) -> Exception | None:
        return self.result.error if self.result else None

    # -- the race -------------------------------------------------------------------------

    def run(self) -> RaceResult:
        """Race the two writers on a fresh store; render and return the result."""
        if self.store is not None:
            self.store.close()
        store = self.store = self.store_factory()
        sid = self.stream_id
        if self.history:
            store.append(sid, self.history)
        read_version = store.stream_version(sid)
        read_state = self.aggregate.fold(store.load_events(sid))
        outcomes: dict[str, WriterOutcome] = {}
        decided: dict[str, list[Any]] = {}
        for name in ("A", "B"):   # both decide on the same snapshot: that is the race
            mode = self._modes[name].value
            outcome = outcomes[name] = WriterOutcome(name, mode, _expected(mode, read_version))
            try:
                decided[name] = self.aggregate.handle(read_state, self.commands[name])
            except DomainError as rejected:
                outcome.error = rejected
        order = (self.first, "B" if self.first == "A" else "A")
        for name in order:
            outcome = outcomes[name]
            if outcome.error is not None:
                continue
            outcome.events = list(decided[name])
            try:
                outcome.version = store.append(sid, outcome.events,
                                               expected_version=outcome.expected)
            except ConcurrencyError as conflict:
                outcome.error = conflict
        log = list(store.read_stream(sid))
        final = self.aggregate.fold(e.data for e in log)
        self.result = RaceResult(outcomes, order, final, len(log), log)
        self._out.value = self.render()
        return self.result

    def render(self) -> str:
        """The last race as HTML: each writer's outcome, the stream after, the final state."""
        r = self.result
        if r is None:
            return ""
        parts = []
        for name in r.order:
            o = r.outcomes[name]
            if o.appended:
                verdict = (f'<span class="el-won" style="color:#2a7">appended '
                           f"{html.escape(', '.join(map(repr, o.events)))} → version "
                           f"{o.version}</span>")
            else:
                verdict = (f'<span class="el-lost" style="color:#c33">'
                           f"{type(o.error).__name__}: {html.escape(str(o.error))}</span>")
            parts.append(f'<li class="el-writer" data-writer="{name}">writer {name} '
                         f"(expected_version={html.escape(str(o.expected))}): {verdict}</li>")
        winner = r.winner or "nobody"
        tail = "".join(event_card(e, title="stored") for e in r.log[-3:])
        return (f'<div class="el-race" data-winner="{winner}" data-loser="{r.loser or ""}">'
                f"<b>winner: {winner}</b><ol>{''.join(parts)}</ol>"
                f"{state_table(r.final_state, title=f'state at version {r.final_version}')}"
                f"<details><summary>last events of the stream</summary>{tail}</details></div>")


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInputError(f"unknown expected-version mode {mode!r}; choose one of {MODES}")
    return mode


def _expected(mode: str, read_version: int) -> Any:
    return {"read version": read_version, "ANY": ANY, "NO_STREAM": NO_STREAM,
            "STREAM_EXISTS": STREAM_EXISTS}[mode]
