"""Shared fixtures: the real logs in data/ (each with its ATTRIBUTION.txt), and a store
per kind."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import eventlab as el

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--spark", action="store_true",
        help="also run the tests marked spark (PySpark in local mode: needs the spark "
             "extra and Java 17; ./run test-spark does both)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``spark`` run only with ``--spark``: the default run installs no
    PySpark. They are deselected (counted as such), never skipped."""
    if config.getoption("--spark"):
        return
    spark = [item for item in items if item.get_closest_marker("spark")]
    if spark:
        config.hook.pytest_deselected(items=spark)
        items[:] = [item for item in items if not item.get_closest_marker("spark")]


@pytest.fixture(scope="session")
def receipt() -> Iterator[el.EventStore]:
    """The receipt log (1,434 cases, 8,577 events) in a DuckDB store, shared: read only."""
    store = el.connect()
    el.import_log(store, DATA / "receipt" / "receipt.xes.gz")
    yield store
    store.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a fresh DuckDB file."""
    return tmp_path / "events.duckdb"


def new_store(kind: str, request, tmp_path: Path) -> el.EventStore:
    """A fresh, empty store of one kind: ``memory``, ``duckdb`` (in memory),
    ``duckdb-file`` or ``postgres`` (a schema of its own on the test server)."""
    if kind == "memory":
        return el.InMemoryEventStore()
    if kind == "duckdb-file":
        return el.connect(tmp_path / "log.duckdb")
    if kind == "postgres":
        server = request.getfixturevalue("postgres_server")
        return el.connect(server.url, schema=request.getfixturevalue("pg_schema"))
    return el.connect()


def state_cell(html: str, field: str) -> str:
    """The text of the value cell of ``field`` in a rendered state table."""
    start = html.index(f'class="el-value" data-field="{field}">')
    body = html[start:].split(">", 1)[1]
    return body[: body.index("</td>")].replace('<mark class="el-changed" data-field="'
                                               f'{field}">', "").replace("</mark>", "")


#: When the two accounts of ``two_accounts`` open.
ACCOUNTS_T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def two_accounts(store: el.EventStore) -> el.EventStore:
    """account-1: opened, +100, -30, +12.5 (an hour apart); account-2: opened, +40."""
    from eventlab.examples.bank import Deposited, Opened, Withdrew

    t0 = ACCOUNTS_T0
    events = [Opened("ada"), Deposited(100.0), Withdrew(30.0), Deposited(12.5)]
    store.append("account-1", [el.NewEvent(e, recorded_at=t0 + timedelta(hours=i),
                                           metadata={"user": "ada"})
                               for i, e in enumerate(events)])
    store.append("account-2", [el.NewEvent(Opened("grace"), recorded_at=t0 + timedelta(days=1)),
                               el.NewEvent(Deposited(40.0), recorded_at=t0 + timedelta(days=2))])
    return store


@pytest.fixture(params=["memory", "duckdb", "duckdb-file", "postgres"])
def store(request, tmp_path: Path) -> Iterator[el.EventStore]:
    """One store of each kind (a module may define its own ``store`` instead)."""
    s = new_store(request.param, request, tmp_path)
    yield s
    s.close()


_HOLDER = textwrap.dedent("""
    import sys, time
    import eventlab as el
    store = el.connect(sys.argv[1])
    store.append("held", [el.NewEvent({"n": 1}, type="T")])
    print("ready", flush=True)
    time.sleep(60)
""")


@contextlib.contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen]:
    """Another process holds ``path`` read-write (one event in it) inside the block."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield holder
    finally:
        holder.kill()
        holder.wait()


# -- a real PostgreSQL server, started once for the whole run ----------------------------

@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server from the machine's binaries (``./run test`` installs
    them when missing). Never skipped: without PostgreSQL the tests that need it fail."""
    from eventlab.pgserver import HOW_TO_INSTALL, ThrowawayPostgres, postgres_binaries

    if postgres_binaries() is None:
        pytest.fail(HOW_TO_INSTALL)
    with ThrowawayPostgres(durable=False) as server:
        yield server


@pytest.fixture
def pg_schema() -> str:
    """A schema name no other test uses: each test gets a log of its own."""
    import uuid

    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_url(postgres_server) -> str:
    return postgres_server.url
