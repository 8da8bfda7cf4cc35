"""A shopping-cart order: created, items added and removed, checked out, paid, shipped.

>>> from eventlab.testing import given
>>> given(Order(), [OrderCreated("ada")]).when(AddItem("tea", 2, 3.5)).then(
...     [ItemAdded("tea", 2, 3.5)])
[ItemAdded(sku='tea', quantity=2, price=3.5)]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..aggregate import Aggregate
from ..errors import DomainError


# -- events -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderCreated:
    customer: str


@dataclass(frozen=True)
class ItemAdded:
    sku: str
    quantity: int
    price: float


@dataclass(frozen=True)
class ItemRemoved:
    sku: str


@dataclass(frozen=True)
class CheckedOut:
    total: float


@dataclass(frozen=True)
class Paid:
    amount: float
    method: str


@dataclass(frozen=True)
class Shipped:
    carrier: str


@dataclass(frozen=True)
class Cancelled:
    reason: str = ""


# -- commands ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Create:
    customer: str


@dataclass(frozen=True)
class AddItem:
    sku: str
    quantity: int
    price: float


@dataclass(frozen=True)
class RemoveItem:
    sku: str


@dataclass(frozen=True)
class CheckOut:
    pass


@dataclass(frozen=True)
class Pay:
    method: str = "card"


@dataclass(frozen=True)
class Ship:
    carrier: str = "post"


@dataclass(frozen=True)
class Cancel:
    reason: str = ""


class OrderError(DomainError):
    """A command the order refuses in its current status."""


@dataclass(frozen=True)
class OrderState:
    customer: str | None = None
    items: tuple[tuple[str, int, float], ...] = ()   # (sku, quantity, price)
    status: str = "new"   # new -> open -> checked_out -> paid -> shipped, or cancelled

    @property
    def total(self) -> float:
        return round(sum(quantity * price for _, quantity, price in self.items), 2)


class Order(Aggregate):
    """A cart that can change until checkout, then is paid and shipped (or cancelled)."""

    events = (OrderCreated, ItemAdded, ItemRemoved, CheckedOut, Paid, Shipped, Cancelled)

    def initial_state(self) -> OrderState:
        return OrderState()

    def apply(self, state: OrderState, event: object) -> OrderState:
        match event:
            case OrderCreated(customer):
                return replace(state, customer=customer, status="open")
            case ItemAdded(sku, quantity, price):
                return replace(state, items=(*state.items, (sku, quantity, price)))
            case ItemRemoved(sku):
                return replace(state, items=tuple(i for i in state.items if i[0] != sku))
            case CheckedOut():
                return replace(state, status="checked_out")
            case Paid():
                return replace(state, status="paid")
            case Shipped():
                return replace(state, status="shipped")
            case Cancelled():
                return replace(state, status="cancelled")
        raise TypeError(f"Order cannot apply {type(event).__name__}")

    def handle(self, state: OrderState, command: object) -> list[object]:
        match command:
            case Create(customer):
                if state.status != "new":
                    raise OrderError("the order already exists")
                return [OrderCreated(customer)]
            case _ if state.status == "new":
                raise OrderError("create the order first")
            case AddItem(sku, quantity, price):
                self._expect(state, "open")
                if quantity <= 0 or price < 0:
                    raise OrderError(f"bad item {sku}: quantity {quantity}, price {price}")
                return [ItemAdded(sku, int(quantity), float(price))]
            case RemoveItem(sku):
                self._expect(state, "open")
                if all(i[0] != sku for i in state.items):
                    raise OrderError(f"{sku} is not in the cart")
                return [ItemRemoved(sku)]
            case CheckOut():
                self._expect(state, "open")
                if not state.items:
                    raise OrderError("the cart is empty")
                return [CheckedOut(state.total)]
            case Pay(method):
                self._expect(state, "checked_out")
                return [Paid(state.total, method)]
            case Ship(carrier):
                self._expect(state, "paid")
                return [Shipped(carrier)]
            case Cancel(reason):
                if state.status in ("shipped", "cancelled"):
                    raise OrderError(f"an order that is {state.status} cannot be cancelled")
                return [Cancelled(reason)]
        raise TypeError(f"Order does not handle {type(command).__name__}")

    @staticmethod
    def _expect(state: OrderState, status: str) -> None:
        if state.status != status:
            raise OrderError(f"the order is {state.status}, not {status}")
