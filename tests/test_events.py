"""The event registry: names, redefinition in a notebook, dicts, upcasting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import pytest

import eventlab as el
from eventlab.events import EventRegistry


def make_class(name: str = "Paid"):
    @dataclass(frozen=True)
    class Paid:
        amount: float

    Paid.__qualname__ = Paid.__name__ = name
    return Paid


def test_class_name_is_the_type_name_unless_registered_otherwise():
    registry = EventRegistry()
    Paid = make_class()
    registry.register(Paid)
    assert registry.encode(Paid(1.5))[0] == "Paid"
    Other = make_class("Other")
    registry.register(Other, name="payment.received")
    assert registry.encode(Other(1.0))[0] == "payment.received"
    assert registry.decode("payment.received", '{"amount": 2}') == Other(2.0)


def test_redefining_a_class_in_a_notebook_cell_just_works():
    registry = EventRegistry()
    first, second = make_class(), make_class()  # same module and qualname, new objects
    registry.register(first)
    registry.register(second)
    assert registry.class_for("Paid") is second
    assert registry.encode(first(1.0))[0] == "Paid"  # old instances still encode
    assert type(registry.decode("Paid", '{"amount": 1}')) is second


def test_an_unrelated_class_with_the_same_name_takes_over_with_a_warning():
    registry = EventRegistry()
    mine = make_class()
    registry.register(mine)
    theirs = make_class()
    theirs.__module__ = "somewhere.else"
    with pytest.warns(UserWarning, match=r"now reads back as somewhere\.else\.Paid"):
        registry.register(theirs)
    assert registry.class_for("Paid") is theirs
    assert registry.encode(mine(1.0))[0] == "Paid"


def test_appending_registers_the_class(tmp_path):
    Fresh = make_class("FreshlyMade")
    with el.connect() as store:
        store.append("s", [Fresh(3)])
        assert [e.data for e in store.read_stream("s")] == [Fresh(3.0)]


def test_unknown_types_decode_to_dicts():
    assert EventRegistry().decode("Nobody", '{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


def test_rich_field_types_round_trip():
    @dataclass(frozen=True)
    class Rich:
        when: datetime
        ref: UUID
        items: tuple[int, ...]
        note: str | None = None

    registry = EventRegistry()
    event = Rich(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                 UUID("12345678-1234-5678-1234-567812345678"), (1, 2))
    name, text, schema = registry.encode(event)
    assert registry.decode(name, text, schema) == event


def test_shape_mismatch_names_the_type_and_suggests_an_upcaster():
    registry = EventRegistry()
    registry.register(make_class())
    with pytest.raises(el.SerializationError, match=r"'Paid'.*upcaster"):
        registry.decode("Paid", '{"cents": 100}')


def test_upcasters_chain_from_the_stored_version():
    @dataclass(frozen=True)
    class Moved:
        to: str
        floor: int
        __event_version__ = 3

    registry = EventRegistry()
    registry.register(Moved)
    registry.upcaster("Moved", 1)(lambda d: {"to": d["city"]})
    registry.upcaster("Moved", 2)(lambda d: {**d, "floor": 0})
    assert registry.decode("Moved", '{"city": "Delft"}', 1) == Moved("Delft", 0)
    assert registry.decode("Moved", '{"to": "Delft"}', 2) == Moved("Delft", 0)
    assert registry.decode("Moved", '{"to": "Delft", "floor": 4}', 3) == Moved("Delft", 4)
    assert registry.encode(Moved("x", 1))[2] == 3


def test_missing_upcaster_is_named():
    @dataclass(frozen=True)
    class Grown:
        size: int
        __event_version__ = 2

    registry = EventRegistry()
    registry.register(Grown)
    with pytest.raises(el.SerializationError, match=r"no upcaster from version 1"):
        registry.decode("Grown", '{"s": 1}', 1)


def test_upcasting_through_a_store():
    @dataclass(frozen=True)
    class Renamed:
        full_name: str
        __event_version__ = 2

    registry = EventRegistry()
    with el.connect(registry=registry) as store:
        store.append("p", [el.NewEvent({"name": "Ada"}, type="Renamed")])  # stored as v1
        registry.register(Renamed)
        registry.upcaster("Renamed", 1)(lambda d: {"full_name": d["name"]})
        store.append("p", [Renamed("Grace")])
        assert [e.data for e in store.read_stream("p")] == [Renamed("Ada"), Renamed("Grace")]


def test_registering_something_that_is_not_a_dataclass():
    with pytest.raises(el.InvalidEventError, match="not a dataclass"):
        EventRegistry().register(dict)
