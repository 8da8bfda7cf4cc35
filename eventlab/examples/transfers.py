"""A money transfer between two accounts: a saga of reactions across three streams.

One stream is one consistency boundary, so moving money from ``account-a`` to
``account-b`` cannot be one append. A transfer stream records the request; the
``Transfers`` reaction withdraws from the source, deposits into the target,
and closes the transfer. When the target refuses the deposit, the reaction
refunds the source (the compensation) and marks the transfer failed.

>>> import eventlab as el
>>> from eventlab.examples.bank import Account, Open
>>> store = el.InMemoryEventStore()
>>> accounts = el.Repository(store, Account())
>>> _ = accounts.execute("account-a", Open("ada")), accounts.execute("account-b", Open("bob"))
>>> _ = accounts.execute("account-a", Deposit(100))
>>> _ = el.Repository(store, Transfer()).execute(
...     "transfer-1", RequestTransfer("account-a", "account-b", 30))
>>> el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers").run()
3
>>> [e.type for e in store.read_stream("transfer-1")]
['TransferRequested', 'TransferCompleted']
"""

from __future__ import annotations

from dataclasses import dataclass

from ..aggregate import Aggregate
from ..envelope import RecordedEvent
from ..errors import DomainError
from ..reactions import Command, Reaction, ReactionFailed
from .bank import Account, Deposit, Deposited, Withdraw, Withdrew


# -- the transfer's own stream -------------------------------------------------------
@dataclass(frozen=True)
class TransferRequested:
    source: str      # the account stream money leaves
    target: str      # the account stream it goes to
    amount: float


@dataclass(frozen=True)
class TransferCompleted:
    pass


@dataclass(frozen=True)
class TransferFailed:
    reason: str


@dataclass(frozen=True)
class RequestTransfer:
    source: str
    target: str
    amount: float


@dataclass(frozen=True)
class Complete:
    pass


@dataclass(frozen=True)
class Fail:
    reason: str


class TransferError(DomainError):
    """A transfer command refused."""


class Transfer(Aggregate):
    """A transfer is requested once, then completes or fails once."""

    events = (TransferRequested, TransferCompleted, TransferFailed)

    def initial_state(self) -> str:
        return "new"

    def apply(self, state: str, event: object) -> str:
        match event:
            case TransferRequested():
                return "requested"
            case TransferCompleted():
                return "completed"
            case TransferFailed():
                return "failed"
        raise TypeError(f"Transfer cannot apply {type(event).__name__}")

    def handle(self, state: str, command: object) -> list[object]:
        match command:
            case RequestTransfer(source, target, amount):
                if state != "new":
                    raise TransferError("this transfer was requested already")
                if amount <= 0 or source == target:
                    raise TransferError(f"cannot move {amount} from {source} to {target}")
                return [TransferRequested(source, target, float(amount))]
            case Complete() | Fail() if state != "requested":
                raise TransferError(f"the transfer is {state}")
            case Complete():
                return [TransferCompleted()]
            case Fail(reason):
                return [TransferFailed(reason)]
        raise TypeError(f"Transfer does not handle {type(command).__name__}")


#: Which aggregate a reactor runs each stream's commands on.
AGGREGATES = {"account-": Account(), "transfer-": Transfer()}


class Transfers(Reaction):
    """request -> withdraw from the source -> deposit into the target -> complete;
    a refused deposit -> refund the source -> fail."""

    def react(self, event: RecordedEvent) -> list[Command]:
        data = event.data
        if isinstance(data, TransferRequested):
            return [Command(data.source, Withdraw(data.amount))]
        request = self.origin(event)
        if not isinstance(request.data, TransferRequested):
            return []          # not a transfer's chain
        cause = self.cause(event)
        match data:
            case Withdrew(amount):                         # the source paid: pay the target
                return [Command(request.data.target, Deposit(amount))]
            case Deposited() if cause is not None and cause.type == "Withdrew":
                return [Command(request.stream_id, Complete())]
            case Deposited() if cause is not None and cause.type == "ReactionFailed":
                return [Command(request.stream_id, Fail(f"refunded: {cause.data.message}"))]
            case ReactionFailed(cause_type="TransferRequested", message=message):
                return [Command(request.stream_id, Fail(message))]   # the withdrawal
            case ReactionFailed(cause_type="Withdrew") if cause is not None:
                return [Command(cause.stream_id, Deposit(cause.data.amount))]   # refund
        return []
