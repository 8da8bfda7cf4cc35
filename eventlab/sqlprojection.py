"""SQL projections: a query over the ``events`` view, kept as a table and refreshed incrementally.

The query reads the ``events`` view (``data`` and ``metadata`` are JSON) and
usually groups by a key. Its result is materialised into a DuckDB table named
after the projection. A refresh only looks at events appended since the last
one, in one of two ways:

* ``key=`` alone: the groups whose key appears among the new events are
  recomputed from all their events (any query shape works: averages, lists,
  the last value...). ``key_expr`` says how to compute a key column from an
  event when it is not a column of ``events`` with the same name.
* ``key=`` plus ``combine=``: the query runs over the new events only and its
  rows are merged into the table column by column (``"sum"``, ``"min"``,
  ``"max"``, ``"last"``, ``"first"``): cheapest, for additive aggregates.

Without ``key`` every refresh recomputes the whole table. The table and the
projection's checkpoint change in one transaction (a ``store.sql_session()``),
on every store: a DuckDB store keeps the table in its own database, next to
the log; other stores keep it in their local DuckDB mirror of the log, for as
long as the store object lives.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposited
>>> store = el.connect()
>>> _ = store.append("acc-1", [Deposited(10), Deposited(5)])
>>> totals = el.SqlProjection(store, "totals", '''
...     select stream_id, sum((data->>'amount')::double) as total
...     from events where type = 'Deposited' group by stream_id''', key="stream_id")
>>> totals.refresh()
2
>>> totals.df().to_dict("records")
[{'stream_id': 'acc-1', 'total': 15.0}]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import EventlabError, InvalidInputError
from .store.names import check_user_table, quote
from .store.sqlsession import SqlError, SqlSession

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import EventStore
    from .store.subscription import Subscription

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WITH = re.compile(r"\s*with\s+(recursive\s+)?", re.IGNORECASE)
_MERGE = {
    "sum": "case when t.{c} is null then d.{c} when d.{c} is null then t.{c} "
           "else t.{c} + d.{c} end",
    "min": "case when t.{c} is null or d.{c} < t.{c} then d.{c} else t.{c} end",
    "max": "case when t.{c} is null or d.{c} > t.{c} then d.{c} else t.{c} end",
    "last": "d.{c}",
    "first": "coalesce(t.{c}, d.{c})",
}



class SqlProjection:
    """A SQL query over ``events`` materialised as table ``name`` and refreshed from the log.

    ``refresh()`` brings the table up to the head and returns how many log
    positions it took in; ``df()`` reads the table; ``rebuild()`` recomputes
    it from scratch; ``follow()`` refreshes after every append.
    """

    def __init__(self, store: EventStore, name: str, query: str,
                 key: str | Sequence[str] | None = None, *,
                 key_expr: Mapping[str, str] | None = None,
                 combine: Mapping[str, str] | None = None) -> None:
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise InvalidInputError(
                f"a SQL projection name must be a plain identifier (letters, digits, _), "
                f"got {name!r}")
        check_user_table(name, "a SQL projection")
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"SQL projection {name!r}: the query must be SQL text")
        keys = [key] if isinstance(key, str) else list(key or [])
        key_expr = dict(key_expr or {})
        unknown = set(key_expr) - set(keys)
        if unknown:
            raise InvalidInputError(
                f"SQL projection {name!r}: key_expr names {sorted(unknown)} which are not in key")
        combine = {c: str(f).lower() for c, f in (combine or {}).items()}
        if combine and not keys:
            raise InvalidInputError(f"SQL projection {name!r}: combine= needs key=")
        for column, how in combine.items():
            if how not in _MERGE:
                raise InvalidInputError(
                    f"SQL projection {name!r}: column {column!r} has combine {how!r}; "
                    f"use one of {sorted(_MERGE)}")
        self.store = store
        self.name = name
        self.table = name
        self.query = query.strip().rstrip(";")
        self.keys = keys
        self.key_expr = {k: key_expr.get(k, quote(k)) for k in keys}
        self.combine = combine
        self.checkpoint_name = f"sql:{name}"
        self._ready = False

    @property
    def position(self) -> int:
        """The last log position the table reflects (0 before the first refresh)."""
        with self.store.sql_session() as session:
            return session.checkpoint(self.checkpoint_name) or 0

    # -- refreshing --------------------------------------------------------------------

    def refresh(self) -> int:
        """Bring the table up to the head; return how many log positions were taken in."""
        return self._refresh(rebuild=False)

    def rebuild(self) -> int:
        """Recompute the whole table from the log."""
        return self._refresh(rebuild=True)

    def _refresh(self, rebuild: bool) -> int:
        try:
            with self.store.sql_session() as session:  # no append lands meanwhile
                return self._catch_up(session, rebuild)
        except SqlError as exc:
            self._ready = False
            raise EventlabError(f"SQL projection {self.name!r}: {exc}") from exc
        except BaseException:
            self._ready = False
            raise

    def _catch_up(self, session: SqlSession, rebuild: bool) -> int:
        head, last = session.head, session.checkpoint(self.checkpoint_name)
        # Once this object has refreshed, the table is known to exist: skip a query.
        exists = self._ready or session.has_table(self.table)
        if exists and last is None:
            raise EventlabError(
                f"a table named {self.table!r} already exists and is not the SQL "
                f"projection's; choose another name")
        full = rebuild or last is None or not exists
        last = 0 if full or last is None else last
        if not full and head <= last:
            return 0
        if full:
            self._build(session, head)
        elif self.combine:
            self._merge(session, last, head)
        elif self.keys:
            self._recompute(session, last, head)
        else:
            self._replace(session, head)
        session.save_checkpoint(self.checkpoint_name, head, reset=full)
        self._ready = True
        return head - last

    def _over(self, where: str) -> str:
        """The user's query with ``events`` narrowed to the rows matching ``where``."""
        source = f"events as (select * from main.events where {where})"
        match = _WITH.match(self.query)
        if match:
            return f"with {match.group(1) or ''}{source}, {self.query[match.end():]}"
        return f"with {source} {self.query}"

    def _build(self, session: SqlSession, head: int) -> None:
        table = quote(self.table)
        session.execute(f"create or replace table {table} as {self._over(f'position <= {head}')}")
        columns = [r[0] for r in session.execute(f"describe {table}")]
        missing = [k for k in self.keys if k not in columns]
        if missing:
            raise InvalidInputError(
                f"SQL projection {self.name!r}: key column(s) {missing} are not in the "
                f"query's result {columns}")
        if self.combine:
            loose = [c for c in columns if c not in self.keys and c not in self.combine]
            if loose:
                raise InvalidInputError(
                    f"SQL projection {self.name!r}: column(s) {loose} have no combine rule; "
                    f"give combine={{column: 'sum' | 'min' | 'max' | 'last' | 'first'}}")

    def _among(self, affected: str, exprs: Mapping[str, str]) -> str:
        """SQL true when the row's key (``exprs``) is among the ``affected`` keys, NULLs too."""
        if len(self.keys) == 1:  # IN becomes a hash semi-join: much cheaper than EXISTS
            e = exprs[self.keys[0]]
            return (f"(({e}) in (select k0 from {affected}) or (({e}) is null and exists "
                    f"(select 1 from {affected} where k0 is null)))")
        same = " and ".join(f"a.k{i} is not distinct from ({exprs[k]})"
                            for i, k in enumerate(self.keys))
        return f"exists (select 1 from {affected} a where {same})"

    def _recompute(self, session: SqlSession, last: int, head: int) -> None:
        table, affected = quote(self.table), quote(f"_eventlab_{self.name}_keys")
        picks = ", ".join(f"{self.key_expr[k]} as k{i}" for i, k in enumerate(self.keys))
        session.execute(f"create or replace temp table {affected} as select distinct {picks} "
                   f"from main.events where position > {last} and position <= {head}")
        own = {k: f"t.{quote(k)}" for k in self.keys}
        session.execute(f"delete from {table} t where {self._among(affected, own)}")
        where = f"position <= {head} and {self._among(affected, self.key_expr)}"
        session.execute(f"insert into {table} by name {self._over(where)}")

    def _merge(self, session: SqlSession, last: int, head: int) -> None:
        table, delta = quote(self.table), quote(f"_eventlab_{self.name}_delta")
        session.execute(f"create or replace temp table {delta} as "
                   f"{self._over(f'position > {last} and position <= {head}')}")
        same = " and ".join(f"t.{quote(k)} is not distinct from d.{quote(k)}"
                            for k in self.keys)
        sets = ", ".join(f"{quote(c)} = " + _MERGE[how].format(c=quote(c))
                         for c, how in self.combine.items())
        session.execute(f"update {table} t set {sets} from {delta} d where {same}")
        session.execute(f"insert into {table} by name select d.* from {delta} d where not exists "
                   f"(select 1 from {table} t where {same})")

    def _replace(self, session: SqlSession, head: int) -> None:
        table = quote(self.table)
        session.execute(f"delete from {table}")
        session.execute(f"insert into {table} by name {self._over(f'position <= {head}')}")

    # -- reading -----------------------------------------------------------------------

    def df(self) -> pd.DataFrame:
        """The table as a DataFrame (ordered by the key columns when there are some)."""
        order = (" order by " + ", ".join(quote(k) for k in self.keys)) if self.keys else ""
        return self.store.sql(f"select * from {quote(self.table)}{order}")

    def follow(self, poll_interval: float | None = 0.5) -> Subscription:
        """Refresh now, then after every append (in a background thread); close() to stop."""
        from .store.subscription import Subscription

        self.refresh()
        return Subscription(self.store, _ignore, from_position=self.store.head() + 1,
                            poll_interval=poll_interval, on_idle=self.refresh,
                            name=f"eventlab-sql-{self.name}")

    def __repr__(self) -> str:
        return f"<SqlProjection {self.name!r} at position {self.position}>"


def _ignore(event: Any) -> None:
    """The follow() subscription only needs to know that something was appended."""


__all__ = ["SqlProjection"]
