"""A bank account: the running example of the course.

>>> from eventlab.testing import given
>>> given(Account(), [Opened("ada"), Deposited(50.0)]).when(Withdraw(20)).then(
...     [Withdrew(20.0)])
[Withdrew(amount=20.0)]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..aggregate import Aggregate
from ..errors import DomainError


# -- events: what happened ----------------------------------------------------------
@dataclass(frozen=True)
class Opened:
    owner: str


@dataclass(frozen=True)
class Deposited:
    amount: float


@dataclass(frozen=True)
class Withdrew:
    amount: float


@dataclass(frozen=True)
class Closed:
    reason: str = ""


# -- commands: what someone asks for ------------------------------------------------
@dataclass(frozen=True)
class Open:
    owner: str


@dataclass(frozen=True)
class Deposit:
    amount: float


@dataclass(frozen=True)
class Withdraw:
    amount: float


@dataclass(frozen=True)
class Close:
    reason: str = ""


# -- rejections ---------------------------------------------------------------------
class AccountError(DomainError):
    """A command the account refuses."""


class InsufficientFunds(AccountError):
    pass


class AccountClosed(AccountError):
    pass


class AccountNotOpen(AccountError):
    pass


@dataclass(frozen=True)
class AccountState:
    owner: str | None = None
    balance: float = 0.0
    is_open: bool = False
    transactions: int = 0


class Account(Aggregate):
    """Open, deposit, withdraw (never below zero), close."""

    events = (Opened, Deposited, Withdrew, Closed)

    def initial_state(self) -> AccountState:
        return AccountState()

    def apply(self, state: AccountState, event: object) -> AccountState:
        match event:
            case Deposited(amount):
                return AccountState(state.owner, state.balance + amount, state.is_open,
                                    state.transactions + 1)
            case Withdrew(amount):
                return AccountState(state.owner, state.balance - amount, state.is_open,
                                    state.transactions + 1)
            case Opened(owner):
                return replace(state, owner=owner, is_open=True)
            case Closed():
                return replace(state, is_open=False)
        raise TypeError(f"Account cannot apply {type(event).__name__}")

    def handle(self, state: AccountState, command: object) -> list[object]:
        match command:
            case Open(owner):
                if state.owner is not None:
                    raise AccountError(f"account already opened by {state.owner}")
                return [Opened(owner)]
            case Deposit(amount) | Withdraw(amount) if amount <= 0:
                raise AccountError(f"amount must be positive, got {amount}")
            case _ if state.owner is None:
                raise AccountNotOpen("open the account first")
            case _ if not state.is_open:
                raise AccountClosed("the account is closed")
            case Deposit(amount):
                return [Deposited(float(amount))]
            case Withdraw(amount):
                if amount > state.balance:
                    raise InsufficientFunds(
                        f"cannot withdraw {amount}: the balance is {state.balance}")
                return [Withdrew(float(amount))]
            case Close(reason):
                return [Closed(reason)]
        raise TypeError(f"Account does not handle {type(command).__name__}")
