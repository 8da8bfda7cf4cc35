"""Crypto-shredding: fields encrypted per subject on every store, read back on every read
path, shown as ciphertext to SQL and frames, and gone for good once the subject is forgotten.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import eventlab as el
from eventlab.examples.bank import Account, Deposit, Deposited, Open, Opened

WAIT = 30  # seconds: only a bound on a hang


@dataclass(frozen=True)
class Registered:
    name: str
    email: str
    plan: str


@dataclass(frozen=True)
class Ordered:
    customer_id: str
    address: str
    total: float


@dataclass(frozen=True)
class Register:
    name: str
    email: str
    plan: str


@dataclass(frozen=True)
class Customer:
    name: str | None = None
    plan: str = ""


class Customers(el.Aggregate):
    events = (Registered,)

    def initial_state(self):
        return Customer()

    def apply(self, state, event):
        return Customer(event.name, event.plan)

    def handle(self, state, command):
        return [Registered(command.name, command.email, command.plan)]


el.register(Registered, Ordered)

ADA, BOB = ("Ada Lovelace", "ada@example.org"), ("Bob Babbage", "bob@example.org")


def encrypted(store):
    crypto = el.encrypt_fields(store, {Registered: ["name", "email"]})
    el.encrypt_fields(store, {Ordered: ["address"]}, subject="customer_id")
    return crypto


def fill(store):
    """Two customers and an order of Ada's; Ada registers twice."""
    store.append("customer-ada", [Registered(*ADA, "free")], expected_version=el.NO_STREAM)
    store.append("customer-bob", [Registered(*BOB, "free")])
    store.append("order-1", [Ordered("customer-ada", "12 St James's Square", 30.0)])
    el.Repository(store, Customers()).execute("customer-ada", Register(*ADA, "pro"))


def everything_stored(store) -> str:
    """Every stored payload, as the store keeps it."""
    return "\n".join(store.read_arrow().column("data").to_pylist())


class Names(el.Projection):
    """Registered names by stream: a projection whose state copies decrypted values."""

    types = (Registered,)

    def initial_state(self):
        return {}

    def apply(self, state, event):
        return {**state, event.stream_id: event.data.name}


# -- the round trip, and what SQL sees -----------------------------------------------------

def test_fields_read_back_on_every_read_path(store):
    encrypted(store)
    fill(store)
    first = Registered(*ADA, "free")
    assert next(store.read_stream("customer-ada")).data == first
    assert [e.data for e in store.read_all(types=["Registered"])] == [
        first, Registered(*BOB, "free"), Registered(*ADA, "pro")]
    assert store.load_events("order-1") == [Ordered("customer-ada", "12 St James's Square",
                                                    30.0)]
    assert el.Repository(store, Customers()).get("customer-ada").state == Customer(ADA[0], "pro")
    assert el.state_at(store, Customers(), "customer-ada", version=1).name == ADA[0]
    assert el.history(store, Customers(), "customer-ada")["name"].tolist() == [ADA[0]] * 2
    projector = el.Projector(store, Names())
    projector.run()
    assert projector.state == {"customer-ada": ADA[0], "customer-bob": BOB[0]}


def test_sql_frames_and_exports_hold_only_ciphertext(store, tmp_path):
    encrypted(store)
    fill(store)
    stored = everything_stored(store)
    for plain in (*ADA, *BOB, "St James"):
        assert plain not in stored
    frame = store.to_df(types=["Registered"])
    assert frame["name"].str.startswith("encrypted:").all()
    assert frame["plan"].tolist() == ["free", "free", "pro"]   # not encrypted: stays plain
    assert "Ada" not in store.sql("select data::varchar as d from events").d.str.cat()
    folder = store.export_parquet(tmp_path / "log")
    exported = pd.read_parquet(folder)
    assert not exported.astype(str).apply(lambda c: c.str.contains("Lovelace")).any().any()


# -- forgetting ----------------------------------------------------------------------------

def test_a_forgotten_subject_reads_as_none_everywhere_and_the_log_keeps_its_shape(store):
    crypto = encrypted(store)
    fill(store)
    repo = el.Repository(store, Customers())
    assert repo.get("customer-ada").state.name == ADA[0]     # a cached, decrypted state
    projector = el.Projector(store, Names())
    projector.run()
    counts = store.sql("select type, count(*) n from events group by 1 order by 1")

    assert crypto.forget("customer-ada") == 1
    assert crypto.subjects() == ["customer-bob"]
    assert next(store.read_stream("customer-ada")).data == Registered(None, None, "free")
    assert [e.data.address for e in store.read_all(types=["Ordered"])] == [None]
    assert store.load_events("order-1") == [Ordered("customer-ada", None, 30.0)]
    assert repo.get("customer-ada").state == Customer(None, "pro")   # its cache saw it
    assert el.state_at(store, Customers(), "customer-ada", version=1).name is None
    assert el.history(store, Customers(), "customer-ada")["name"].isna().all()
    seen, both = [], threading.Event()

    def handler(event):
        seen.append(event.data)
        if len(seen) == 3:
            both.set()

    sub = store.subscribe(handler, types=["Registered"])
    try:
        assert both.wait(WAIT), sub.error
    finally:
        sub.close()
    assert seen[:2] == [Registered(None, None, "free"), Registered(*BOB, "free")]
    # the log keeps its shape: analytics count the same events
    pd.testing.assert_frame_equal(
        store.sql("select type, count(*) n from events group by 1 order by 1"), counts)
    assert store.head() == 4
    # a projection holds its copy until it is rebuilt from the log
    assert projector.state["customer-ada"] == ADA[0]
    projector.rebuild()
    assert projector.state == {"customer-ada": None, "customer-bob": BOB[0]}


def test_forgetting_leaves_other_subjects_and_new_events_readable(store):
    crypto = encrypted(store)
    fill(store)
    crypto.forget("customer-ada")
    assert crypto.forget("customer-ada") == 0          # nothing left to forget
    assert next(store.read_stream("customer-bob")).data == Registered(*BOB, "free")
    store.append("customer-ada", [Registered("Ada Byron", "ab@example.org", "pro")])
    assert [e.data.name for e in store.read_stream("customer-ada")] == [
        None, None, "Ada Byron"]   # a new key, a new start


def test_a_forgotten_key_leaves_the_duckdb_file(tmp_path):
    store = el.connect(tmp_path / "shop.duckdb")
    crypto = encrypted(store)
    fill(store)
    for n in range(40):   # other subjects, written and checkpointed over time
        store.append(f"customer-{n}", [Registered(f"Name {n}", f"{n}@example.org", "free")])
    secret = crypto.keys.current(["customer-ada"])["customer-ada"][1]
    store.connection.execute("checkpoint")
    path = Path(store.path)
    assert secret in path.read_bytes()
    crypto.forget("customer-ada")
    data = path.read_bytes() + (path.with_name(path.name + ".wal").read_bytes()
                                if path.with_name(path.name + ".wal").exists() else b"")
    assert secret not in data
    assert ADA[0].encode() not in data          # the plain text never reached the file
    store.close()
    with el.connect(path) as again:
        encrypted(again)
        assert next(again.read_stream("customer-ada")).data.name is None
        assert next(again.read_stream("customer-7")).data.name == "Name 7"


def test_a_forgotten_key_leaves_the_postgres_tables():
    import psycopg

    from eventlab.pgserver import ThrowawayPostgres

    # A server of its own: a transaction left open by any other session keeps the old
    # row version alive (VACUUM FULL copies it), which is what this test must rule out.
    with ThrowawayPostgres(durable=False) as server:
        store = el.connect(server.url)
        tables = server.folder / "data" / "base"

        def on_disk(secret: bytes) -> bool:
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute("checkpoint")   # what the server holds in memory goes to its files
            return any(secret in f.read_bytes() for f in tables.rglob("*") if f.is_file())

        try:
            crypto = encrypted(store)
            fill(store)
            secret = crypto.keys.current(["customer-ada"])["customer-ada"][1]
            assert on_disk(secret)
            crypto.forget("customer-ada")
            assert not on_disk(secret)
            assert next(store.read_stream("customer-ada")).data.name is None
        finally:
            store.close()


def test_forgetting_deletes_the_subjects_stream_snapshots(store):
    crypto = encrypted(store)
    repo = el.Repository(store, Customers(), snapshot_every=1)
    repo.execute("customer-ada", Register(*ADA, "pro"))
    assert store.load_snapshot("customer-ada", repo.snapshot_key) is not None
    crypto.forget("customer-ada")
    assert store.load_snapshot("customer-ada", repo.snapshot_key) is None
    assert el.Repository(store, Customers(), snapshot_every=1).get(
        "customer-ada").state.name is None


# -- keys live in the store's database -------------------------------------------------------

def test_keys_survive_reopening_a_duckdb_file(tmp_path):
    path = tmp_path / "shop.duckdb"
    with el.connect(path) as store:
        encrypted(store)
        fill(store)
    with el.connect(path) as store:
        crypto = encrypted(store)
        assert crypto.subjects() == ["customer-ada", "customer-bob"]
        assert next(store.read_stream("customer-ada")).data == Registered(*ADA, "free")
    with el.connect(path, read_only=True) as reader:
        encrypted(reader)
        assert next(reader.read_stream("customer-bob")).data.email == BOB[1]


def test_a_store_without_the_declaration_shows_ciphertext(tmp_path):
    path = tmp_path / "shop.duckdb"
    with el.connect(path) as store:
        encrypted(store)
        fill(store)
    with el.connect(path) as store:
        assert next(store.read_stream("customer-bob")).data.name.startswith("encrypted:")


# -- all or nothing --------------------------------------------------------------------------

def test_a_failing_append_writes_no_key_and_no_event(store):
    crypto = encrypted(store)
    with pytest.raises(el.ConcurrencyError):
        store.append("customer-ada", [Registered(*ADA, "pro")], expected_version=3)
    with pytest.raises(el.InvalidInputError, match=r"event #2 .*no field 'customer_id'"):
        store.append("order-1", [Ordered("customer-ada", "x", 1.0),
                                 el.NewEvent({"address": "y", "total": 2.0}, type="Ordered")])
    with pytest.raises(el.ConcurrencyError):
        store.append_many([("customer-ada", [Registered(*ADA, "pro")], el.NO_STREAM),
                           ("customer-bob", [Registered(*BOB, "free")], 7)])
    with pytest.raises(el.SerializationError):
        store.append("customer-ada", [Registered(*ADA, "pro"), Registered(float("nan"), "", "")])
    assert crypto.subjects() == []
    assert crypto.keys.secrets(None) == {}
    assert store.head() == 0


def test_a_batch_is_encrypted_too_and_a_copy_keeps_the_ciphertext(store):
    crypto = encrypted(store)
    store.append_batch(pd.DataFrame({
        "stream_id": ["customer-ada", "order-2"], "type": ["Registered", "Ordered"],
        "data": [{"name": ADA[0], "email": ADA[1], "plan": "pro"},
                 {"customer_id": "customer-bob", "address": "1 Dorset St", "total": 5.0}]}))
    assert "Lovelace" not in everything_stored(store)
    assert crypto.subjects() == ["customer-ada", "customer-bob"]
    assert [e.data for e in store.read_all()][1].address == "1 Dorset St"
    with pytest.raises(el.InvalidInputError, match=r"row 1 .*no field 'customer_id'"):
        store.append_batch(pd.DataFrame({"stream_id": ["order-3"], "type": ["Ordered"],
                                         "data": [{"address": "z", "total": 1.0}]}))
    target = el.connect()
    try:
        el.copy(store, target)
        assert everything_stored(target) == everything_stored(store)
    finally:
        target.close()


def test_events_written_before_encryption_stay_readable():
    store = el.InMemoryEventStore()
    store.append("customer-old", [Registered("Old Name", "old@example.org", "free")])
    encrypted(store)
    store.append("customer-new", [Registered("New Name", "new@example.org", "free")])
    assert [e.data.name for e in store.read_all()] == ["Old Name", "New Name"]
    assert "New Name" not in everything_stored(store)


def test_a_tampered_value_is_an_error_not_a_placeholder():
    store = el.InMemoryEventStore()
    encrypted(store)
    store.append("customer-ada", [Registered(*ADA, "pro")])
    name = store.to_df()["name"][0]
    # the name's ciphertext put in the email field does not decrypt: it is bound to its field
    store.append("customer-ada", [el.NewEvent({"name": name, "email": name, "plan": "x"},
                                              type="Registered")])
    with pytest.raises(el.SerializationError, match=r"field 'email' .* does not decrypt"):
        list(store.read_stream("customer-ada", 2))


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "subject", "message"), [
    ({Registered: ["nmae"]}, None, "Registered has no field 'nmae'; its fields are name"),
    ({Registered: [1]}, None, "must be a field name \\(text\\), got int 1"),
    ({Registered: []}, None, "a field name or a list of them"),
    ({Registered: ["name", "name"]}, None, "repeat a name"),
    ({Ordered: ["address"]}, "customer", "Ordered has no field 'customer'"),
    ({Ordered: ["customer_id"]}, "customer_id", "subject field 'customer_id' .* cannot be"),
    ({Ordered: ["address"]}, "", "subject must be None"),
    ([Registered], None, "fields must map event types"),
    ({}, None, "fields must map event types"),
    ({int: ["x"]}, None, "int is not an event class"),
    ({"": ["x"]}, None, "an event type is an event class or its type name"),
])
def test_bad_declarations_are_refused_and_add_nothing(fields, subject, message):
    store = el.InMemoryEventStore()
    with pytest.raises(el.InvalidInputError, match=message):
        el.encrypt_fields(store, fields, subject=subject)
    assert store.sealer is None


def test_one_rule_per_event_type_and_clear_errors_at_append():
    store = el.InMemoryEventStore()
    crypto = encrypted(store)
    assert el.encrypt_fields(store, {Registered: ["name", "email"]}) is crypto   # the same
    with pytest.raises(el.InvalidInputError, match="already has fields"):
        el.encrypt_fields(store, {Registered: ["email"]})
    el.encrypt_fields(store, {"Note": ["text"]})      # no class: checked at append
    with pytest.raises(el.InvalidInputError, match="has no field 'text' to encrypt"):
        store.append("n-1", [el.NewEvent({"body": "hi"}, type="Note")])
    with pytest.raises(el.InvalidInputError, match="not a JSON object"):
        store.append_batch(pd.DataFrame({"stream_id": ["n-1"], "type": ["Note"],
                                         "data": ["[1, 2]"]}))
    with pytest.raises(el.InvalidInputError, match="field 'customer_id' is None"):
        store.append("order-1", [el.NewEvent({"customer_id": None, "address": "a",
                                              "total": 1.0}, type="Ordered")])
    with pytest.raises(el.InvalidInputError, match="a subject is named by"):
        crypto.forget(None)
    assert store.head() == 0 and crypto.subjects() == []


def test_a_subject_may_be_an_integer_field():
    store = el.InMemoryEventStore()
    crypto = el.encrypt_fields(store, {"CardCharged": ["card"]}, subject="customer")
    store.append("payment-1", [el.NewEvent({"customer": 42, "card": "4111"},
                                           type="CardCharged")])
    assert crypto.subjects() == ["42"]
    assert crypto.forget(42) == 1
    assert next(store.read_all()).data == {"customer": 42, "card": None}


def test_an_account_still_folds_when_its_owner_is_forgotten():
    store = el.InMemoryEventStore()
    crypto = el.encrypt_fields(store, {Opened: "owner"})
    repo = el.Repository(store, Account())
    repo.execute("acc-1", Open("ada"))
    repo.execute("acc-1", Deposit(5))
    crypto.forget("acc-1")
    state = el.Repository(store, Account()).get("acc-1").state
    assert (state.owner, state.balance, state.is_open) == (None, 5.0, True)


def test_a_forgotten_amount_cannot_be_added_up_and_the_fold_says_so():
    store = el.InMemoryEventStore()
    crypto = el.encrypt_fields(store, {Deposited: "amount"})
    repo = el.Repository(store, Account())
    repo.execute("acc-1", Open("ada"))
    repo.execute("acc-1", Deposit(5))
    crypto.forget("acc-1")
    assert store.load_events("acc-1", 2) == [Deposited(None)]
    with pytest.raises(el.ApplyError, match="version 2"):
        el.Repository(store, Account()).get("acc-1")
