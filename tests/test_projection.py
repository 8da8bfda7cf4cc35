"""Projectors (run, checkpoints, kill and resume, follow), project_history and SQL projections."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest

import eventlab as el
from eventlab.examples.bank import Account, Closed, Deposited, Opened, Withdrew
from eventlab.subscription import SubscriptionError

from conftest import new_store

WAIT = 30  # seconds: only a bound on a hang


@pytest.fixture(params=["duckdb", "memory", "postgres"])
def store(request, tmp_path):
    s = new_store(request.param, request, tmp_path)
    yield s
    s.close()


class Balances(el.Projection):
    types = (Deposited, Withdrew)

    def initial_state(self):
        return {}

    def apply(self, state, event):
        sign = 1 if event.type == "Deposited" else -1
        state[event.stream_id] = state.get(event.stream_id, 0.0) + sign * event.data.amount
        return state


@dataclass(frozen=True)
class Totals:
    deposited: float = 0.0
    count: int = 0
    owners: tuple[str, ...] = field(default_factory=tuple)


class TotalsProjection(el.Projection):
    def initial_state(self):
        return Totals()

    def apply(self, state, event):
        match event.data:
            case Deposited(amount):
                return Totals(state.deposited + amount, state.count + 1, state.owners)
            case Opened(owner):
                return Totals(state.deposited, state.count + 1, (*state.owners, owner))
        return Totals(state.deposited, state.count + 1, state.owners)


def fill(store, n_streams=5, n=60, seed=1):
    rng = random.Random(seed)
    for s in range(n_streams):
        store.append(f"acc-{s}", [Opened(f"owner-{s}")])
    for _ in range(n):
        amount = float(rng.randint(1, 50))
        event = Deposited(amount) if rng.random() < 0.7 else Withdrew(amount)
        store.append(f"acc-{rng.randrange(n_streams)}", [event])


def fold_balances(store):
    out = {}
    for e in store.read_all():
        if e.type in ("Deposited", "Withdrew"):
            sign = 1 if e.type == "Deposited" else -1
            out[e.stream_id] = out.get(e.stream_id, 0.0) + sign * e.data.amount
    return out


# -- Projector ----------------------------------------------------------------------------

def test_run_applies_up_to_the_head_and_only_new_events_after(store):
    fill(store)
    p = el.Projector(store, Balances())
    assert p.run() == 60
    assert p.state == fold_balances(store) and p.position == store.head()
    assert p.run() == 0
    store.append("acc-1", [Deposited(7), Closed("done")])
    assert p.run() == 1                       # Closed is filtered out by `types`
    assert p.position == store.head()         # ... but the position moves past it
    assert p.state == fold_balances(store)


def test_named_projector_resumes_from_its_checkpoint(store):
    fill(store, n=30)
    first = el.Projector(store, TotalsProjection(), name="totals")
    first.run()
    again = el.Projector(store, TotalsProjection(), name="totals")
    assert again.position == first.position == store.head()
    assert again.state == first.state and isinstance(again.state, Totals)
    assert again.run() == 0
    store.append("acc-9", [Opened("zed")])
    assert again.run() == 1 and again.state.owners[-1] == "zed"


def test_reopened_file_resumes_with_typed_state(tmp_path):
    path = tmp_path / "bank.duckdb"
    with el.connect(path) as store:
        fill(store, n=40)
        p = el.Projector(store, TotalsProjection(), name="totals", checkpoint_every=7)
        p.run()
        expected = p.state
        head = store.head()
    with el.connect(path) as store:
        p = el.Projector(store, TotalsProjection(), name="totals")
        assert (p.position, p.state) == (head, expected)
        store.append("acc-0", [Deposited(1)])
        assert p.run() == 1
        full = el.Projector(store, TotalsProjection())
        full.run()
        assert p.state == full.state


def test_state_type_rebuilds_non_string_keys(store):
    class ByVersion(el.Projection):
        state_type = dict[int, int]

        def initial_state(self):
            return {}

        def apply(self, state, event):
            state[event.version] = state.get(event.version, 0) + 1
            return state

    fill(store, n=10)
    el.Projector(store, ByVersion(), name="by-version").run()
    resumed = el.Projector(store, ByVersion(), name="by-version")
    assert all(isinstance(k, int) for k in resumed.state)
    assert resumed.state[1] == 5


def test_non_string_keys_without_state_type_are_refused_by_name(store):
    class ByVersion(el.Projection):
        def initial_state(self):
            return {}

        def apply(self, state, event):
            state[event.version] = state.get(event.version, 0.0) + 1.0
            return state

    fill(store, n=10)
    p = el.Projector(store, ByVersion(), name="by-version")
    with pytest.raises(el.SerializationError, match=r"'by-version'.*state_type = dict\[int"):
        p.run()
    assert store.load_checkpoint("by-version") is None


def test_non_string_keys_one_level_down_are_refused_too(store):
    class Nested(el.Projection):
        def initial_state(self):
            return {"by_version": {}}

        def apply(self, state, event):
            state["by_version"][event.version] = 1
            return state

    store.append("a", [Deposited(1)])
    with pytest.raises(el.SerializationError, match="nested-one"):
        el.Projector(store, Nested(), name="nested-one").run()


def test_state_type_round_trips_int_keys_exactly(store):
    class Amounts(el.Projection):
        types = (Deposited,)
        state_type = dict[int, float]

        def initial_state(self):
            return {}

        def apply(self, state, event):
            state[event.version] = state.get(event.version, 0.0) + event.data.amount
            return state

    fill(store, n=30)
    first = el.Projector(store, Amounts(), name="amounts")
    first.run()
    resumed = el.Projector(store, Amounts(), name="amounts")
    assert resumed.state == first.state
    assert {type(k) for k in resumed.state} == {int}
    assert {type(v) for v in resumed.state.values()} == {float}
    store.append("acc-0", [Deposited(2.5)])
    resumed.run()
    assert {type(k) for k in resumed.state} == {int}
    full = el.Projector(store, Amounts())
    full.run()
    assert resumed.state == full.state


class NewShape(el.Projection):
    """The same projector name, but its state is now a dataclass with other fields."""

    def initial_state(self):
        return Totals()

    def apply(self, state, event):
        return TotalsProjection().apply(state, event)


def test_stored_state_that_no_longer_fits_starts_over_with_a_warning(tmp_path):
    path = tmp_path / "shape.duckdb"
    with el.connect(path) as store:
        fill(store, n=30)
        store.save_checkpoint("totals", store.head() - 5, '{"owners": 7}')   # an old shape
    with el.connect(path) as store:
        with pytest.warns(UserWarning, match=r"projector 'totals'.*starts over"):
            p = el.Projector(store, NewShape(), name="totals", checkpoint_every=4)
        assert (p.position, p.state) == (0, Totals())
        assert p.run() == store.head()           # a full rebuild; early checkpoints move back
        full = el.Projector(store, TotalsProjection())
        full.run()
        assert p.state == full.state
        assert store.load_checkpoint("totals")[0] == store.head()
    with el.connect(path) as store:
        resumed = el.Projector(store, NewShape(), name="totals")
        assert (resumed.position, resumed.state) == (store.head(), full.state)
        store.append("acc-0", [Deposited(3)])
        assert resumed.run() == 1 and resumed.state.deposited == full.state.deposited + 3


def test_stored_state_that_does_not_fit_can_be_rebuilt_right_away(store):
    fill(store, n=10)
    store.save_checkpoint("totals", store.head(), '"not a Totals"')
    with pytest.warns(UserWarning, match="totals"):
        p = el.Projector(store, TotalsProjection(), name="totals")
    assert p.rebuild() == store.head()
    assert el.Projector(store, TotalsProjection(), name="totals").state == p.state


def test_rebuild_starts_over(store):
    fill(store, n=20)
    p = el.Projector(store, Balances(), name="balances")
    p.run()
    p.state["ghost"] = 1.0                    # a state gone wrong
    assert p.rebuild() == 20
    assert p.state == fold_balances(store)
    assert el.Projector(store, Balances(), name="balances").state == fold_balances(store)


def test_state_that_cannot_be_stored_names_the_projector(store):
    class Broken(el.Projection):
        def initial_state(self):
            return {"lock": object()}

        def apply(self, state, event):
            return state

    store.append("a", [Deposited(1)])
    p = el.Projector(store, Broken(), name="broken-one")
    with pytest.raises(el.SerializationError, match="broken-one"):
        p.run()
    assert store.load_checkpoint("broken-one") is None


def test_apply_error_names_stream_version_and_type(store):
    class FailsOnThird(el.Projection):
        def initial_state(self):
            return 0

        def apply(self, state, event):
            if event.position == 3:
                raise KeyError("no such account")
            return state + 1

    store.append("acc-1", [Opened("ada"), Deposited(1)])
    store.append("acc-2", [Withdrew(5), Deposited(2)])
    p = el.Projector(store, FailsOnThird(), name="fails")
    with pytest.raises(el.ApplyError) as info:
        p.run()
    err = info.value
    assert (err.stream_id, err.version, err.position, err.type) == ("acc-2", 1, 3, "Withdrew")
    assert "FailsOnThird.apply" in str(err) and "'acc-2'" in str(err)
    assert isinstance(err.cause, KeyError)
    assert (p.state, p.position) == (2, 2)    # the state after the last good event


def test_aggregate_apply_error_names_stream_version_and_type(store):
    class Fragile(Account):
        def apply(self, state, event):
            if isinstance(event, Withdrew):
                raise ArithmeticError("negative zero")
            return super().apply(state, event)

    store.append("acc-7", [Opened("ada"), Deposited(5), Withdrew(2)])
    with pytest.raises(el.ApplyError) as info:
        el.Repository(store, Fragile()).get("acc-7")
    assert (info.value.stream_id, info.value.version, info.value.type) == ("acc-7", 3, "Withdrew")
    with pytest.raises(el.ApplyError) as info:
        el.state_at(store, Fragile(), "acc-7", version=3)
    err = info.value
    assert (err.stream_id, err.version, err.type, err.position) == ("acc-7", 3, "Withdrew", 3)


def test_follow_applies_new_events_live_and_checkpoints_on_close(store):
    fill(store, n=10)
    p = el.Projector(store, Balances(), name="live")
    with p.follow() as sub:
        assert sub.wait_until(store.head(), timeout=WAIT)
        store.append("acc-1", [Deposited(100)])
        store.append("acc-2", [Withdrew(1), Closed()])
        assert sub.wait_until(store.head(), timeout=WAIT)
        assert p.state == fold_balances(store) and p.position == store.head()
    assert store.load_checkpoint("live")[0] == store.head()
    assert el.Projector(store, Balances(), name="live").state == fold_balances(store)


def test_follow_reports_an_apply_error(store):
    class Picky(el.Projection):
        def apply(self, state, event):
            if event.type == "Closed":
                raise ValueError("closing is not supported")
            return event.position

    store.append("a", [Opened("ada")])
    sub = el.Projector(store, Picky()).follow()
    store.append("a", [Closed("bye")])
    with pytest.raises(SubscriptionError) as info:
        sub.wait_until(2, timeout=WAIT)
    assert isinstance(sub.error, el.ApplyError)
    assert (sub.error.stream_id, sub.error.version, sub.error.type) == ("a", 2, "Closed")
    assert info.value.cause is sub.error


KILLED_RUN = textwrap.dedent("""
    import sys, time
    import eventlab as el

    class Positions(el.Projection):
        def initial_state(self):
            return {"positions": []}
        def apply(self, state, event):
            time.sleep(0.002)
            state["positions"].append(event.position)
            return state

    store = el.connect(sys.argv[1])
    p = el.Projector(store, Positions(), name="positions", checkpoint_every=25)
    original = p.checkpoint
    def checkpoint():
        original()
        print("checkpoint", p.position, flush=True)
    p.checkpoint = checkpoint
    p.run()
    print("finished", flush=True)
""")


def test_killed_projector_resumes_without_applying_twice_or_skipping(tmp_path):
    path = tmp_path / "killed.duckdb"
    with el.connect(path) as store:
        for i in range(40):
            store.append(f"s-{i % 7}", [Deposited(float(j)) for j in range(25)])
        head = store.head()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ})
    seen = 0
    for line in proc.stdout:
        if line.startswith("checkpoint"):
            seen += 1
            if seen == 5:
                break
    os.kill(proc.pid, signal.SIGKILL)    # mid-run, between or during events
    proc.wait(timeout=WAIT)
    assert proc.returncode == -signal.SIGKILL
    with el.connect(path) as store:
        class Positions(el.Projection):
            def initial_state(self):
                return {"positions": []}

            def apply(self, state, event):
                state["positions"].append(event.position)
                return state

        p = el.Projector(store, Positions(), name="positions")
        stopped_at = p.position
        assert 0 < stopped_at < head
        assert p.state["positions"] == list(range(1, stopped_at + 1))
        assert p.run() == head - stopped_at
        assert p.state["positions"] == list(range(1, head + 1))   # none twice, none skipped


def test_bad_projector_arguments():
    store = el.InMemoryEventStore()
    with pytest.raises(el.InvalidInputError, match=r"el\.Projection"):
        el.Projector(store, Balances)
    with pytest.raises(ValueError, match="checkpoint_every"):
        el.Projector(store, Balances(), checkpoint_every=0)
    with pytest.raises(el.EventlabError, match="unnamed"):
        el.Projector(store, Balances()).checkpoint()


# -- project_history ---------------------------------------------------------------------

def test_project_history_follows_the_fold(store):
    fill(store, n_streams=3, n=25)
    frame = el.project_history(store, Balances(), every=4)
    assert list(frame.columns[:2]) == ["position", "events"]
    assert frame["events"].tolist() == [0, 4, 8, 12, 16, 20, 24, 25]
    last = frame.iloc[-1]
    assert last["position"] == max(e.position for e in store.read_all(types=["Deposited",
                                                                             "Withdrew"]))
    expected = fold_balances(store)
    assert {k: last[k] for k in expected} == pytest.approx(expected)
    # every row is the fold up to its position
    row = frame.iloc[3]
    partial = {}
    for e in store.read_all():
        if e.position > row["position"]:
            break
        if e.type in ("Deposited", "Withdrew"):
            sign = 1 if e.type == "Deposited" else -1
            partial[e.stream_id] = partial.get(e.stream_id, 0.0) + sign * e.data.amount
    assert {k: row[k] for k in partial} == pytest.approx(partial)


def test_project_history_of_dataclass_state_has_field_columns(store):
    fill(store, n_streams=2, n=5)
    frame = el.project_history(store, TotalsProjection())
    assert list(frame.columns) == ["position", "events", "deposited", "count", "owners"]
    assert frame["count"].tolist() == list(range(8))
    with pytest.raises(ValueError, match="every"):
        el.project_history(store, TotalsProjection(), every=0)


# -- SQL projections ------------------------------------------------------------------------

BALANCE_SQL = """
    select stream_id,
           sum(case type when 'Deposited' then (data->>'amount')::double
                         else -(data->>'amount')::double end) as balance,
           count(*) as moves
    from events where type in ('Deposited', 'Withdrew')
    group by stream_id
"""


def sql_balances(projection):
    return {r["stream_id"]: r["balance"] for r in projection.df().to_dict("records")}


@pytest.mark.parametrize("mode", ["recompute", "combine", "full"])
def test_sql_projection_equals_the_python_fold_after_incremental_refreshes(store, mode):
    options = {"recompute": {"key": "stream_id"},
               "combine": {"key": "stream_id", "combine": {"balance": "sum", "moves": "sum"}},
               "full": {}}[mode]
    sql = el.SqlProjection(store, "balances", BALANCE_SQL, **options)
    py = el.Projector(store, Balances())
    rng = random.Random(7)
    total = 0
    for round_ in range(6):
        for _ in range(rng.randint(1, 40)):
            stream = f"acc-{rng.randrange(12)}"   # new accounts keep appearing
            amount = float(rng.randint(1, 99))
            store.append(stream, [Deposited(amount) if rng.random() < 0.6 else Withdrew(amount),
                                  Closed()] if round_ == 3 else [Deposited(amount)])
        before = sql.position
        total += sql.refresh()
        assert sql.position == store.head() and total == store.head() > before
        py.run()
        assert sql_balances(sql) == pytest.approx(py.state)
    counts = {r["stream_id"]: r["moves"] for r in sql.df().to_dict("records")}
    assert sum(counts.values()) == len(list(store.read_all(types=["Deposited", "Withdrew"])))
    assert sql.refresh() == 0
    store.delete_stream("acc-0")   # the log changed under the table: a rebuild follows it
    sql.rebuild()
    py.rebuild()
    assert sql_balances(sql) == pytest.approx(py.state)


def test_sql_projection_with_a_key_expression_and_its_own_with_clause():
    store = el.connect()
    query = """
        with moves as (select data->>'owner' as owner, position from events
                       where type = 'Opened')
        select owner, count(*) as accounts, max(position) as last from moves group by owner
    """
    sql = el.SqlProjection(store, "owners", query, key="owner",
                           key_expr={"owner": "data->>'owner'"})
    store.append("a", [Opened("ada")])
    store.append("b", [Opened("bob")])
    sql.refresh()
    store.append("c", [Opened("ada"), Deposited(3)])
    sql.refresh()
    rows = sql.df().to_dict("records")
    assert rows == [{"owner": "ada", "accounts": 2, "last": 3},
                    {"owner": "bob", "accounts": 1, "last": 2}]


def test_sql_projection_resumes_after_reopening(tmp_path):
    path = tmp_path / "resume.duckdb"
    with el.connect(path) as store:
        store.append("a", [Deposited(5)])
        el.SqlProjection(store, "balances", BALANCE_SQL, key="stream_id").refresh()
    with el.connect(path) as store:
        sql = el.SqlProjection(store, "balances", BALANCE_SQL, key="stream_id")
        assert sql.position == 1
        store.append("a", [Deposited(2)])
        assert sql.refresh() == 1
        assert sql_balances(sql) == {"a": 7.0}
        store.append("b", [Withdrew(1)])
        assert sql.rebuild() == 3
        assert sql_balances(sql) == {"a": 7.0, "b": -1.0}


def test_sql_projection_follows_appends(store):
    sql = el.SqlProjection(store, "balances", BALANCE_SQL, key="stream_id")
    with sql.follow() as sub:
        store.append("a", [Deposited(5)])
        store.append("b", [Deposited(1), Withdrew(1)])
        assert sub.wait_until(store.head(), timeout=WAIT)
    assert sql.position == store.head()
    assert sql_balances(sql) == {"a": 5.0, "b": 0.0}


def test_sql_projection_errors_are_clear_and_write_nothing():
    store = el.connect()
    store.append("a", [Deposited(5)])
    with pytest.raises(el.InvalidInputError, match="identifier"):
        el.SqlProjection(store, "drop table x", BALANCE_SQL)
    with pytest.raises(el.InvalidInputError, match="combine"):
        el.SqlProjection(store, "p", BALANCE_SQL, key="stream_id", combine={"balance": "avg"})
    bad = el.SqlProjection(store, "broken", "select nope from events group by 1", key="nope")
    with pytest.raises(el.EventlabError, match="'broken'"):
        bad.refresh()
    assert bad.position == 0
    tables = {r[0] for r in store.connection.execute("show tables").fetchall()}
    assert "broken" not in tables
    loose = el.SqlProjection(store, "loose", BALANCE_SQL, key="stream_id",
                             combine={"balance": "sum"})
    with pytest.raises(el.InvalidInputError, match="moves"):
        loose.refresh()
    missing_key = el.SqlProjection(store, "nokey", BALANCE_SQL, key="account")
    with pytest.raises(el.InvalidInputError, match="account"):
        missing_key.refresh()
    store.connection.execute("create table mine (x int)")
    with pytest.raises(el.EventlabError, match="already exists"):
        el.SqlProjection(store, "mine", BALANCE_SQL).refresh()



def test_sql_projection_recomputes_null_keys_and_composite_keys():
    store = el.connect()
    by_owner = el.SqlProjection(
        store, "by_owner", "select data->>'owner' as owner, count(*) as n from events group by 1",
        key="owner", key_expr={"owner": "data->>'owner'"})
    by_pair = el.SqlProjection(
        store, "by_pair", "select stream_id, type, count(*) as n from events group by all",
        key=["stream_id", "type"])
    rng = random.Random(5)
    for _ in range(4):
        for _ in range(rng.randint(3, 12)):
            stream = f"s-{rng.randrange(4)}"
            store.append(stream, [Opened(rng.choice(["ada", "bob"])) if rng.random() < 0.3
                                  else Deposited(1.0)])
        by_owner.refresh()
        by_pair.refresh()
        events = list(store.read_all())
        owners, pairs = {}, {}
        for e in events:
            owner = e.data.owner if e.type == "Opened" else None
            owners[owner] = owners.get(owner, 0) + 1
            pairs[(e.stream_id, e.type)] = pairs.get((e.stream_id, e.type), 0) + 1
        got = {r["owner"] if isinstance(r["owner"], str) else None: r["n"]
               for r in by_owner.df().to_dict("records")}
        assert got == owners and len(by_owner.df()) == len(owners)
        assert {(r["stream_id"], r["type"]): r["n"]
                for r in by_pair.df().to_dict("records")} == pairs
