"""ConcurrencyLab: two writers race on one stream; see who wins and what the loser gets.

Both writers load the stream at the same version, decide on a command with
the aggregate, then append with the expected-version mode chosen for each.
The first to commit wins; the other either appends too (``ANY`` lets it, and
may break an invariant) or gets a ``ConcurrencyError`` and writes nothing.
With ``retry`` on, a writer that got a conflict reloads the stream, decides
again (the aggregate may now refuse) and appends again.

Every step (read, decide, append) is recorded as the lab runs it, with its
logical time, in ``result.steps``; the race is drawn from them
(``race_chart.plot_race``), two lanes on one time axis, in the widget and in
``render()``.

>>> lab = ConcurrencyLab()               # the bank: balance 100, two withdrawals
>>> lab.run().winner, type(lab.result.error).__name__
('A', 'ConcurrencyError')
>>> lab.retry = True                     # B reloads at version 3 and asks again
>>> [(s.time, s.writer, s.kind, s.outcome) for s in lab.run().steps[5:]]
[(5, 'B', 'append', 'conflict'), (6, 'B', 'read', 'loaded'), (7, 'B', 'decide', 'refused')]
>>> lab.retry, lab.mode_b = False, "ANY"
>>> lab.run().loser is None, lab.result.final_state.balance
(True, -20.0)
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w
from matplotlib.figure import Figure

from .. import ANY, NO_STREAM, STREAM_EXISTS, ConcurrencyError, DomainError, NewEvent, connect
from ..aggregate import Aggregate
from ..errors import InvalidInputError
from ..store.base import EventStore
from .race_chart import plot_race
from .render import event_card, fields_of, figure_png, png_img, state_table
from .view import View

#: The expected-version modes a writer can use; "read version" is the version it loaded.
MODES = ("read version", "ANY", "NO_STREAM", "STREAM_EXISTS")


@dataclass(frozen=True)
class Step:
    """One thing a writer did, recorded when the lab did it.

    ``time`` is the logical time (0, 1, 2, ... in the order the lab ran the
    steps); ``kind`` is "read", "decide" or "append"; ``attempt`` is 1, or 2
    for the retry after a conflict. ``outcome``: a read "loaded"; a decision
    "decided" or "refused" (the aggregate raised a ``DomainError``); an append
    "appended" or "conflict" (a ``ConcurrencyError``). ``version`` is the
    version a read loaded or an append landed at; ``expected`` the
    expected_version an append sent; ``events`` what a decision produced.
    """

    time: int
    writer: str
    kind: str
    attempt: int
    outcome: str
    version: int | None = None
    expected: Any = None
    events: tuple[Any, ...] = ()
    error: Exception | None = None

    @property
    def label(self) -> str:
        """A few short lines for the step's box in the chart."""
        if self.kind == "read":
            return f"read\nv{self.version}"
        if self.kind == "decide":
            if self.error is not None:
                return "refused\n" + "\n".join(textwrap.wrap(_words(type(self.error).__name__), 12))
            return "decide\n" + _events_label(self.events)
        sent = f"exp {self.expected}" if isinstance(self.expected, int) \
            else getattr(self.expected, "name", str(self.expected))
        if isinstance(self.error, ConcurrencyError):
            return f"append\n{sent}\n✗ at v{self.error.actual}"
        return f"append\n{sent}\n→ v{self.version}"


@dataclass
class WriterOutcome:
    """What happened to one writer: the events it appended, or the error it got."""

    name: str
    mode: str
    expected: Any
    events: list[Any] = field(default_factory=list)
    version: int | None = None
    error: Exception | None = None
    read_version: int | None = None
    attempt: int = 1

    @property
    def appended(self) -> bool:
        return self.error is None and self.version is not None


@dataclass
class RaceResult:
    """The outcome of one race.

    ``outcomes`` are the writers' first attempts; ``retries`` the second
    attempts of the writers that retried after a conflict; ``steps`` every
    step of both, in the order they happened.
    """

    outcomes: dict[str, WriterOutcome]
    order: tuple[str, str]
    final_state: Any
    final_version: int
    log: list[Any]
    steps: list[Step] = field(default_factory=list)
    retries: dict[str, WriterOutcome] = field(default_factory=dict)
    stream_id: str = ""

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

    def plot(self) -> Figure:
        """The race drawn: a lane per writer, its steps on one time axis (7 x 2.5 in)."""
        winner = self.winner or "nobody"
        return plot_race(self.steps, title=f"{self.stream_id}: winner {winner}, the stream "
                                           f"ends at version {self.final_version}")


def _bank() -> tuple[Aggregate, list[Any], Any, Any]:
    from ..examples.bank import Account, Deposited, Opened, Withdraw

    return Account(), [Opened("ada"), Deposited(100.0)], Withdraw(70), Withdraw(50)


class ConcurrencyLab(View):
    """Two simulated writers on one stream with chosen expected-version modes.

    ``history`` is written first; then writers A and B both load the stream,
    handle ``command_a`` / ``command_b`` and append in ``first`` order. With
    ``retry`` on, a writer whose append hit a ``ConcurrencyError`` reloads,
    decides again and appends again (once, with the same mode). Each
    ``run()`` starts from a fresh store made by ``store_factory`` (an
    in-memory DuckDB by default). ``mode_a``, ``mode_b``, ``first`` and
    ``retry`` are settable from Python and from the widget; ``figure`` is the
    last race drawn.
    """

    def __init__(self, aggregate: Aggregate | None = None, history: Sequence[Any] | None = None,
                 command_a: Any = None, command_b: Any = None, *,
                 mode_a: str = "read version", mode_b: str = "read version",
                 first: str = "A", retry: bool = False, stream_id: str = "account-1",
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
        self.figure: Figure | None = None
        self._png = b""
        self._modes = {n: w.Dropdown(options=MODES, description=f"writer {n}") for n in "AB"}
        self._first = w.ToggleButtons(options=["A", "B"], description="commits first")
        self._retry = w.Checkbox(description="the loser retries", indent=False)
        self._button = w.Button(description="race", button_style="primary", icon="play")
        self._out = w.HTML()
        self.mode_a, self.mode_b, self.first, self.retry = mode_a, mode_b, first, retry
        self._button.on_click(lambda _: self.run())
        self.widget = w.VBox([
            w.HTML(f"<b>ConcurrencyLab</b>: A runs {html.escape(repr(command_a))}, "
                   f"B runs {html.escape(repr(command_b))} on <code>{stream_id}</code>"),
            w.HBox([self._modes["A"], self._modes["B"]]),
            w.HBox([self._first, self._retry, self._button]), self._out])
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
    def retry(self) -> bool:
        """Whether a writer that got a ``ConcurrencyError`` reloads and tries once more."""
        return self._retry.value

    @retry.setter
    def retry(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise InvalidInputError(f"retry must be True or False, got {on!r}")
        self._retry.value = on

    @property
    def winner(self) -> str | None:
        return self.result.winner if self.result else None

    @property
    def loser(self) -> str | None:
        return self.result.loser if self.result else None

    @property
    def error(self) -> Exception | None:
        return self.result.error if self.result else None

    # -- the race -------------------------------------------------------------------------

    def run(self) -> RaceResult:
        """Race the two writers on a fresh store; draw, render and return the result."""
        if self.store is not None:
            self.store.close()
        store = self.store = self.store_factory()
        sid = self.stream_id
        if self.history:
            store.append(sid, self.history)
        steps: list[Step] = []
        outcomes = {n: WriterOutcome(n, self._modes[n].value, None) for n in "AB"}
        # both load and decide before either appends: that is the race
        states = {n: self._read(store, outcomes[n], steps) for n in "AB"}
        for name in "AB":
            self._decide(outcomes[name], states[name], steps)
        order = (self.first, "B" if self.first == "A" else "A")
        for name in order:
            if outcomes[name].error is None:
                self._append(store, outcomes[name], steps)
        retries: dict[str, WriterOutcome] = {}
        if self.retry:
            for name in order:
                if isinstance(outcomes[name].error, ConcurrencyError):
                    again = retries[name] = WriterOutcome(name, outcomes[name].mode, None,
                                                          attempt=2)
                    state = self._read(store, again, steps)
                    if self._decide(again, state, steps):
                        self._append(store, again, steps)
        log = list(store.read_stream(sid))
        final = self.aggregate.fold(e.data for e in log)
        self.result = RaceResult(outcomes, order, final, len(log), log, steps, retries, sid)
        self.figure = self.result.plot()
        self._png = figure_png(self.figure)
        self._out.value = self.render()
        return self.result

    def _read(self, store: EventStore, outcome: WriterOutcome, steps: list[Step]) -> Any:
        """Load the stream: note the version and the expected version the writer will send."""
        version = store.stream_version(self.stream_id)
        state = self.aggregate.fold(store.load_events(self.stream_id))
        outcome.read_version, outcome.expected = version, _expected(outcome.mode, version)
        _record(steps, outcome, "read", "loaded", version=version)
        return state

    def _decide(self, outcome: WriterOutcome, state: Any, steps: list[Step]) -> bool:
        """Handle the writer's command on the state it loaded; False when refused."""
        try:
            outcome.events = list(self.aggregate.handle(state, self.commands[outcome.name]))
        except DomainError as rejected:
            outcome.error = rejected
            _record(steps, outcome, "decide", "refused", error=rejected)
            return False
        _record(steps, outcome, "decide", "decided", events=tuple(outcome.events))
        return True

    def _append(self, store: EventStore, outcome: WriterOutcome, steps: list[Step]) -> None:
        try:
            outcome.version = store.append(self.stream_id, outcome.events,
                                           expected_version=outcome.expected)
        except ConcurrencyError as conflict:
            outcome.error = conflict
            _record(steps, outcome, "append", "conflict", expected=outcome.expected,
                    error=conflict)
            return
        _record(steps, outcome, "append", "appended", version=outcome.version,
                expected=outcome.expected)

    def render(self) -> str:
        """The last race as HTML: the chart, each writer's outcome, the stream after, the
        final state."""
        r = self.result
        if r is None:
            return ""
        parts = [_outcome_item(r.outcomes[name]) for name in r.order]
        parts += [_outcome_item(r.retries[name], "retry") for name in r.order
                  if name in r.retries]
        winner = r.winner or "nobody"
        tail = "".join(event_card(e, title="stored") for e in r.log[-3:])
        chart = png_img(self._png, alt="the race: writer A and writer B on one time axis")
        return (f'<div class="el-race" data-winner="{winner}" data-loser="{r.loser or ""}" '
                f'data-retried="{"".join(r.retries)}"><b>winner: {winner}</b><br/>{chart}'
                f"<ol>{''.join(parts)}</ol>"
                f"{state_table(r.final_state, title=f'state at version {r.final_version}')}"
                f"<details><summary>last events of the stream</summary>{tail}</details></div>")


def _record(steps: list[Step], outcome: WriterOutcome, kind: str, result: str,
            **details: Any) -> None:
    """Note a step now: its logical time is how many steps came before it."""
    steps.append(Step(len(steps), outcome.name, kind, outcome.attempt, result, **details))


def _outcome_item(o: WriterOutcome, what: str = "") -> str:
    if o.appended:
        verdict = (f'<span class="el-won" style="color:#2a7">appended '
                   f"{html.escape(', '.join(map(repr, o.events)))} → version "
                   f"{o.version}</span>")
    else:
        verdict = (f'<span class="el-lost" style="color:#c33">'
                   f"{type(o.error).__name__}: {html.escape(str(o.error))}</span>")
    retry = ' el-retry' if what else ""
    return (f'<li class="el-writer{retry}" data-writer="{o.name}">writer {o.name}'
            f"{' ' + what if what else ''} (read version {o.read_version}, "
            f"expected_version={html.escape(str(o.expected))}): {verdict}</li>")


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInputError(f"unknown expected-version mode {mode!r}; choose one of {MODES}")
    return mode


def _expected(mode: str, read_version: int) -> Any:
    return {"read version": read_version, "ANY": ANY, "NO_STREAM": NO_STREAM,
            "STREAM_EXISTS": STREAM_EXISTS}[mode]


def _words(name: str) -> str:
    """``InsufficientFunds`` -> ``Insufficient Funds``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)


def _events_label(events: Sequence[Any]) -> str:
    """``Withdrew\\n70`` for one event (its type, then its values); ``3 events`` for more."""
    if not events:
        return "no events"
    if len(events) > 1:
        return f"{len(events)} events"
    event = events[0]
    if isinstance(event, NewEvent):
        kind, event = event.type or type(event.data).__name__, event.data
    else:
        kind = type(event).__name__
    values = " ".join(f"{v:g}" if isinstance(v, float) else str(v)
                      for v in (fields_of(event) or {}).values())
    return "\n".join(part if len(part) <= 12 else part[:11] + "…"
                     for part in (kind, values) if part)
