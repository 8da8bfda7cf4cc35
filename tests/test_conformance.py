"""Conformance checking: cases replayed through a decider (your aggregate or el.rules).

Expected deviations and fitness values are worked out by hand or with pandas,
never by the code under test.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest

import eventlab as el
from eventlab.conformance import Deviation, Deviations, RuleError
from eventlab.rules import RuleSet, four_eyes, not_coexist, precedes, responds
from eventlab.testing import recorded

RECEIPT = Path(__file__).resolve().parents[1] / "data" / "receipt" / "receipt.xes.gz"


def log(store: el.EventStore, cases: dict[str, list], **meta) -> el.EventStore:
    """Append each case: an item is a type name, or ``(type, payload)``."""
    for stream_id, steps in cases.items():
        events = [el.NewEvent(s[1], type=s[0], metadata=meta or None) if isinstance(s, tuple)
                  else el.NewEvent({}, type=s, metadata=meta or None) for s in steps]
        store.append(stream_id, events)
    return store


def mem(cases: dict[str, list]) -> el.EventStore:
    return log(el.InMemoryEventStore(), cases)


def found(result) -> list[tuple]:
    """The deviations as (case, version or None, rule, message)."""
    return [(r.stream_id, None if pd.isna(r.version) else int(r.version), r.rule, r.message)
            for r in result.deviations.itertuples()]


def fitness(events: int, deviating_events: int, end_deviates: bool, checks_end: bool = True
            ) -> float:
    """The documented definition, written out: conforming steps / steps."""
    steps = events + (1 if checks_end else 0)
    return (steps - deviating_events - (1 if end_deviates else 0)) / steps


# -- each rule ----------------------------------------------------------------------------

def test_precedes_reports_each_b_without_an_a_before_it():
    store = mem({"ok": ["a", "b"], "late": ["b", "a", "b"], "never": ["b", "c", "b"]})
    result = el.analytics.conformance(store, precedes("a", "b"))
    rule = "precedes('a', 'b')"
    why = "'b' happened without 'a' before it"
    assert found(result) == [("late", 1, rule, why), ("never", 1, rule, why),
                             ("never", 3, rule, why)]
    cases = result.cases.set_index("stream_id")
    assert cases["deviations"].to_dict() == {"ok": 0, "late": 1, "never": 2}
    assert cases["events"].to_dict() == {"ok": 2, "late": 3, "never": 3}
    assert cases.loc["ok", "fitness"] == 1.0
    assert cases.loc["late", "fitness"] == pytest.approx(fitness(3, 1, False))   # 3/4
    assert cases.loc["never", "fitness"] == pytest.approx(fitness(3, 2, False))  # 2/4
    assert list(result.deviations["position"]) == [3, 6, 8]
    assert not result.deviations["at_end"].any()


def test_responds_is_checked_at_the_end_of_the_case():
    store = mem({"answered": ["a", "b"], "open": ["a", "c"], "reopened": ["a", "b", "a"],
                 "no_a": ["b"], "twice": ["a", "a", "b"]})
    result = el.analytics.conformance(store, responds("a", "b"))
    why = "'a' was not followed by 'b'"
    assert found(result) == [("open", None, "responds('a', 'b')", why),
                             ("reopened", None, "responds('a', 'b')", why)]
    assert result.deviations["at_end"].all()
    assert result.deviations["position"].isna().all()
    assert result.deviations["type"].isna().all()
    fit = result.cases.set_index("stream_id")["fitness"]
    assert fit["open"] == pytest.approx(fitness(2, 0, True))          # 2/3
    assert fit["reopened"] == pytest.approx(fitness(3, 0, True))      # 3/4
    assert fit[["answered", "no_a", "twice"]].tolist() == [1.0, 1.0, 1.0]


def test_not_coexist_reports_once_at_the_second_activity():
    store = mem({"only_a": ["a", "a"], "both": ["a", "c", "b", "b", "a"], "reverse": ["b", "a"]})
    result = el.analytics.conformance(store, not_coexist("a", "b"))
    assert [(c, v) for c, v, _, _ in found(result)] == [("both", 3), ("reverse", 2)]
    messages = result.deviations["message"].tolist()
    assert messages[0] == ("'b' happened in a case that already had 'a'; "
                           "'a' and 'b' must not both happen")
    assert messages[1].startswith("'a' happened in a case that already had 'b'")


def test_four_eyes_reads_the_payload_then_the_metadata():
    store = mem({
        "two_people": [("approve", {"org:resource": "r1"}), ("accept", {"org:resource": "r2"})],
        "same": [("approve", {"org:resource": "112"}), ("x", {"org:resource": "112"}),
                 ("accept", {"org:resource": "112"})],
        "reverse": [("accept", {"org:resource": 7}), ("approve", {"org:resource": 7})],
    })
    result = el.analytics.conformance(store, four_eyes("approve", "accept"))
    rule = "four_eyes('approve', 'accept', by='org:resource')"
    assert found(result) == [
        ("same", 3, rule, "'approve' and 'accept' done by the same resource '112'"),
        ("reverse", 2, rule, "'approve' and 'accept' done by the same resource 7")]

    by_user = log(el.InMemoryEventStore(), {"c": ["approve", "accept"]}, user="ada")
    result = el.analytics.conformance(by_user, four_eyes("approve", "accept", by="user"))
    assert found(result) == [("c", 2, "four_eyes('approve', 'accept', by='user')",
                              "'approve' and 'accept' done by the same user 'ada'")]


def test_four_eyes_without_the_field_is_a_deviation_unless_ignored():
    store = mem({"c": [("approve", {"org:resource": "r1"}), ("accept", {}),
                       ("accept", {"org:resource": None}), ("other", {})]})
    result = el.analytics.conformance(store, four_eyes("approve", "accept"))
    assert [v for _, v, _, _ in found(result)] == [2, 3]
    assert result.deviations["message"][0] == (
        "'accept' has no 'org:resource', so who did it is unknown and 'approve' and "
        "'accept' cannot be shown to be done by two people")
    ignored = el.analytics.conformance(store, four_eyes("approve", "accept", missing="ignore"))
    assert ignored.deviations.empty
    assert ignored.cases["fitness"].tolist() == [1.0]


# -- rules combined -----------------------------------------------------------------------

def test_combined_rules_each_keep_state_and_each_deviation_names_its_rule():
    model = precedes("a", "b") & not_coexist("b", "x") & responds("a", "c")
    assert isinstance(model, el.Aggregate) and isinstance(model, RuleSet)
    assert len(model) == 3 and repr(model) == (
        "precedes('a', 'b') & not_coexist('b', 'x') & responds('a', 'c')")
    store = mem({"bad": ["x", "b", "a"], "good": ["a", "b", "c"], "half": ["a", "c", "a"]})
    result = el.analytics.conformance(store, model)
    assert found(result) == [
        ("bad", 2, "precedes('a', 'b')", "'b' happened without 'a' before it"),
        ("bad", 2, "not_coexist('b', 'x')",
         "'b' happened in a case that already had 'x'; 'b' and 'x' must not both happen"),
        ("bad", None, "responds('a', 'c')", "'a' was not followed by 'c'"),
        ("half", None, "responds('a', 'c')", "'a' was not followed by 'c'")]
    cases = result.cases.set_index("stream_id")
    assert cases["deviations"].to_dict() == {"bad": 3, "good": 0, "half": 1}
    # two deviations on one event make one deviating step
    assert cases.loc["bad", "fitness"] == pytest.approx(fitness(3, 1, True))   # 2/4
    assert cases.loc["half", "fitness"] == pytest.approx(fitness(3, 0, True))  # 3/4
    assert result.conforming == 1
    assert result.fitness == pytest.approx((0.5 + 1 + 0.75) / 3)
    assert result.by_rule().set_index("rule")["deviations"].to_dict() == {
        "responds('a', 'c')": 2, "precedes('a', 'b')": 1, "not_coexist('b', 'x')": 1}
    # a rule nothing broke is listed too, with 0
    clean = el.analytics.conformance(store, model & precedes("c", "q"))
    assert clean.by_rule().set_index("rule").loc["precedes('c', 'q')"].tolist() == [0, 0]


def test_combining_flattens_and_a_rule_set_is_a_normal_decider():
    a_b, b_c, c_d = precedes("a", "b"), precedes("b", "c"), responds("c", "d")
    assert list((a_b & b_c) & c_d) == list(a_b & (b_c & c_d)) == [a_b, b_c, c_d]
    model = a_b & responds("a", "c")
    past = [recorded({}, "c1", type="a", version=1)]
    b = recorded({}, "c1", type="b", version=2)
    assert el.given(model, past).when(b).then([b]) == [b]
    error = el.given(model, []).when(b).then_raises(Deviation, match="without 'a'")
    assert error.rule == "precedes('a', 'b')"
    root = el.AggregateRoot.new(model, "c1")
    root.handle(recorded({}, "c1", type="a"))
    with pytest.raises(Deviation, match="'a' was not followed by 'c'"):
        model.finish(root.state)
    with pytest.raises(TypeError):
        precedes("a", "b") & 5


# -- your own aggregate as the model ------------------------------------------------------

@dataclass(frozen=True)
class ParcelPlaced:
    order: str


@dataclass(frozen=True)
class ParcelSettled:
    amount: float


@dataclass(frozen=True)
class ParcelDispatched:
    carrier: str


class ShippedBeforePaid(el.DomainError):
    pass


@dataclass(frozen=True)
class Parcel:
    placed: bool = False
    paid: bool = False
    shipped: bool = False


class ParcelProcess(el.Aggregate):
    """An order must be paid before it ships, paid once, and shipped once paid."""

    events = (ParcelPlaced, ParcelSettled, ParcelDispatched)

    def initial_state(self) -> Parcel:
        return Parcel()

    def apply(self, state: Parcel, event) -> Parcel:
        if isinstance(event, ParcelPlaced):
            return replace(state, placed=True)
        if isinstance(event, ParcelSettled):
            return replace(state, paid=True)
        if isinstance(event, ParcelDispatched):
            return replace(state, shipped=True)
        return state

    def handle(self, state: Parcel, event) -> list:
        if isinstance(event, ParcelDispatched) and not state.paid:
            raise ShippedBeforePaid(f"shipped by {event.carrier} before it was paid")
        if isinstance(event, ParcelSettled) and state.paid:
            raise el.DomainError("paid twice")
        return [event]

    def finish(self, state: Parcel) -> None:
        if state.paid and not state.shipped:
            raise el.DomainError("paid but never shipped")


PARCELS = {
    "p1": [ParcelPlaced("p1"), ParcelSettled(10.0), ParcelDispatched("dhl")],
    "p2": [ParcelPlaced("p2"), ParcelDispatched("ups"), ParcelSettled(5.0), ParcelSettled(5.0)],
    "p3": [ParcelPlaced("p3"), ParcelSettled(1.0)],
}


def parcels(store: el.EventStore) -> el.EventStore:
    for stream_id, events in PARCELS.items():
        store.append(stream_id, events)
    return store


def check_parcels(result) -> None:
    assert found(result) == [
        ("p2", 2, "ShippedBeforePaid", "shipped by ups before it was paid"),
        ("p2", 4, "ParcelProcess", "paid twice"),
        ("p3", None, "ParcelProcess", "paid but never shipped")]
    assert result.deviations["type"].tolist()[:2] == ["ParcelDispatched", "ParcelSettled"]
    cases = result.cases.set_index("stream_id")
    assert cases["fitness"].to_dict() == pytest.approx(
        {"p1": 1.0, "p2": fitness(4, 2, False), "p3": fitness(2, 0, True)})


def test_a_users_aggregate_is_the_model_and_sees_its_own_event_classes():
    result = el.analytics.conformance(parcels(el.InMemoryEventStore()), ParcelProcess())
    check_parcels(result)
    assert repr(result) == ("<Conformance ParcelProcess: 3 cases, 1 conforming (33.3%), "
                            f"mean fitness {(1 + 0.6 + 2 / 3) / 3:.3f}, 3 deviations>")


def test_an_aggregate_without_finish_counts_only_its_events():
    class NoEnd(ParcelProcess):
        finish = None

    result = el.analytics.conformance(parcels(el.InMemoryEventStore()), NoEnd())
    cases = result.cases.set_index("stream_id")
    assert cases["fitness"].to_dict() == pytest.approx(
        {"p1": 1.0, "p2": fitness(4, 2, False, checks_end=False), "p3": 1.0})


def test_the_model_sees_what_time_travel_shows_an_aggregate():
    seen: list = []

    class Watcher(el.Aggregate):
        def initial_state(self):
            return 0

        def apply(self, state, event):
            return state + 1

        def handle(self, state, event):
            seen.append(event)
            return []

    store = parcels(el.InMemoryEventStore())
    store.append("p1", [el.NewEvent({"note": "hi"}, type="Noted by hand")])
    el.analytics.conformance(store, Watcher(), filter=el.Filter(streams="p1"))
    assert seen == [*PARCELS["p1"], {"note": "hi"}]   # domain events; a dict without a class

    class Applied(Watcher):
        def apply(self, state, event):
            seen.append(event)
            return state + 1

    seen.clear()
    el.history(store, Applied(), "p1")                   # time travel hands the same
    assert seen[:4] == [*PARCELS["p1"], {"note": "hi"}]

    seen.clear()
    Watcher.wants_recorded = True
    el.analytics.conformance(store, Watcher(), filter=el.Filter(streams="p1"))
    assert [type(e) for e in seen] == [el.RecordedEvent] * 4
    assert seen[0].data == ParcelPlaced("p1")
    assert (seen[3].type, seen[3].data, seen[3].version) == ("Noted by hand", {"note": "hi"}, 4)
    seen.clear()
    el.history(store, Applied(), "p1")                   # and so does time travel
    assert {type(e) for e in seen} == {el.RecordedEvent}


def test_rules_and_an_aggregate_combine():
    store = parcels(el.InMemoryEventStore())
    model = ParcelProcess() & precedes("ParcelPlaced", "ParcelDispatched")
    store.append("p4", [ParcelDispatched("gls")])
    result = el.analytics.conformance(store, model)
    p4 = result.deviations[result.deviations["stream_id"] == "p4"]
    assert p4["rule"].tolist() == ["ShippedBeforePaid",
                                   "precedes('ParcelPlaced', 'ParcelDispatched')"]
    assert len(result.deviations) == 5
    assert (ParcelProcess() & precedes("a", "b")).name == "ParcelProcess & precedes('a', 'b')"


# -- a real log ---------------------------------------------------------------------------

def test_receipt_log_precedes_matches_a_pandas_count():
    store = el.connect()
    el.import_log(store, RECEIPT)
    a, b = "T02 Check confirmation of receipt", "T06 Determine necessity of stop advice"
    df = store.to_df().sort_values(["stream_id", "version"])
    a_before = (df["type"] == a).astype(int).groupby(df["stream_id"]).cumsum()
    breaks = df[(df["type"] == b) & (a_before == 0)]
    assert len(breaks) > 100

    result = el.analytics.conformance(store, precedes(a, b))
    assert len(result.deviations) == len(breaks)
    assert sorted(result.deviations["position"]) == sorted(breaks["position"])
    assert len(result.cases) == df["stream_id"].nunique()
    per_case = breaks.groupby("stream_id").size()
    events = df.groupby("stream_id").size()
    expected = (1 - per_case.reindex(events.index, fill_value=0) / (events + 1)).sort_index()
    got = result.cases.set_index("stream_id")["fitness"].sort_index()
    assert got.to_numpy() == pytest.approx(expected.to_numpy())
    assert result.cases["stream_id"].tolist() == list(dict.fromkeys(
        store.to_df()["stream_id"]))       # cases in the log's order


def test_filter_keeps_only_some_cases():
    store = mem({"c1": ["b"], "c2": ["a", "b"], "c3": ["b", "b"], "c4": ["x"]})
    f = el.Filter(starts_with="b")
    result = el.analytics.conformance(store, precedes("a", "b"), filter=f)
    assert result.cases["stream_id"].tolist() == f.stream_ids(store) == ["c1", "c3"]
    assert result.deviations["stream_id"].tolist() == ["c1", "c3", "c3"]
    with pytest.raises(el.InvalidInputError, match=r"filter= takes an eventlab\.Filter"):
        el.analytics.conformance(store, precedes("a", "b"), filter="starts_with b")


def test_an_empty_log():
    result = el.analytics.conformance(el.InMemoryEventStore(), precedes("a", "b"))
    assert result.cases.empty and result.deviations.empty
    assert list(result.cases.columns) == ["stream_id", "events", "deviations", "fitness"]
    assert list(result.deviations.columns) == ["stream_id", "position", "version", "type",
                                               "rule", "message", "at_end"]
    assert repr(result) == "<Conformance precedes('a', 'b'): 0 cases>"


# -- bugs and bad arguments ---------------------------------------------------------------

class Buggy(el.Aggregate):
    wants_recorded = True

    def initial_state(self):
        return 0

    def apply(self, state, event):
        return state + 1

    def handle(self, state, event):
        if event.type == "boom":
            return 1 / 0
        return []


def test_a_bug_in_the_model_stops_with_the_case_event_and_rule():
    store = mem({"c1": ["a", "a"], "c2": ["a", "boom"]})
    with pytest.raises(RuleError) as caught:
        el.analytics.conformance(store, Buggy())
    assert str(caught.value) == ("Buggy.handle failed on stream 'c2', version 2, position 4, "
                                 "type 'boom': ZeroDivisionError: division by zero")
    assert isinstance(caught.value.cause, ZeroDivisionError)
    assert isinstance(caught.value, el.ApplyError)
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is RuleError and str(again) == str(caught.value)

    with pytest.raises(RuleError, match=r"^Buggy.handle failed on stream 'c2', version 2"):
        el.analytics.conformance(store, precedes("a", "b") & Buggy())


def test_a_bug_in_apply_or_finish_is_not_a_deviation():
    class BadApply(Buggy):
        def apply(self, state, event):
            raise el.DomainError("apply must not refuse")

    class BadEnd(Buggy):
        def finish(self, state):
            return {}["missing"]

    store = mem({"c1": ["a"]})
    with pytest.raises(RuleError, match=r"BadApply.apply failed on stream 'c1', version 1.*"
                                        r"DomainError: apply must not refuse"):
        el.analytics.conformance(store, BadApply())
    with pytest.raises(RuleError, match=r"BadEnd.finish \(the end of the case\) failed on "
                                        r"stream 'c1': KeyError"):
        el.analytics.conformance(store, BadEnd())
    with pytest.raises(RuleError, match=r"BadEnd.finish \(the end of the case\) failed"):
        el.analytics.conformance(store, responds("a", "b") & BadEnd())


@pytest.mark.parametrize("make, message", [
    (lambda: precedes(1, "a"), "precedes: activities are event type names .* a is 1"),
    (lambda: responds("a", ""), "responds: .* b is ''"),
    (lambda: not_coexist("a", "a"), "not_coexist: name two different activities"),
    (lambda: four_eyes("a", "b", by=""), "four_eyes: by= names the field"),
    (lambda: four_eyes("a", "b", by=None), "four_eyes: by= names the field"),
    (lambda: four_eyes("a", "b", missing="skip"), "missing= is 'deviation' or 'ignore'"),
    (lambda: precedes("a", "b") & object(), "unsupported operand"),
])
def test_bad_rule_arguments_are_refused_clearly(make, message):
    with pytest.raises((el.InvalidInputError, TypeError), match=message):
        make()


def test_the_model_must_be_a_decider_instance():
    store = mem({"c": ["a"]})
    with pytest.raises(el.InvalidInputError, match=r"got the class ParcelProcess: pass "
                                                   r"ParcelProcess\(\)"):
        el.analytics.conformance(store, ParcelProcess)
    with pytest.raises(el.InvalidInputError, match="has no initial_state, apply, handle"):
        el.analytics.conformance(store, "precedes(a, b)")
    with pytest.raises(el.InvalidInputError, match="a rule must be a decider"):
        RuleSet(precedes("a", "b"), ParcelProcess)


def test_deviation_errors_carry_their_rules():
    one = Deviation("why", "r1")
    both = Deviations([one, Deviation("because", "r2")])
    assert str(both) == "r1: why; r2: because"
    assert isinstance(both, el.DomainError)
    again = pickle.loads(pickle.dumps(both))
    assert [(d.rule, d.message) for d in again.deviations] == [("r1", "why"), ("r2", "because")]


# -- every store --------------------------------------------------------------------------

def test_conformance_on_every_store(store):
    log(store, {
        "c1": [("submit", {"org:resource": "u1"}), ("approve", {"org:resource": "u2"})],
        "c2": [("approve", {"org:resource": "u1"})],
        "c3": [("submit", {"org:resource": "u3"}), ("approve", {"org:resource": "u3"})],
    })
    parcels(store)
    model = (precedes("submit", "approve") & responds("submit", "approve")
             & four_eyes("submit", "approve"))
    result = el.analytics.conformance(store, model, filter=el.Filter(where="type = 'approve'"))
    assert found(result) == [
        ("c2", 1, "precedes('submit', 'approve')",
         "'approve' happened without 'submit' before it"),
        ("c3", 2, "four_eyes('submit', 'approve', by='org:resource')",
         "'submit' and 'approve' done by the same resource 'u3'")]
    assert result.cases["fitness"].tolist() == pytest.approx([1.0, 0.5, 2 / 3])
    check_parcels(el.analytics.conformance(store, ParcelProcess(),
                                           filter=el.Filter(starts_with="ParcelPlaced")))
