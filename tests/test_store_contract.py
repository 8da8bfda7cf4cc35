"""Run the one store contract against every store."""

from __future__ import annotations

import eventlab as el

from store_contract import StoreContract


class TestInMemoryStore(StoreContract):
    def make_store(self, tmp_path):
        return el.InMemoryEventStore()


class TestDuckDBMemoryStore(StoreContract):
    def make_store(self, tmp_path):
        return el.connect()


class TestDuckDBFileStore(StoreContract):
    def make_store(self, tmp_path):
        return el.connect(tmp_path / "events.duckdb")

    def other_handle(self, store, tmp_path):
        return el.connect(tmp_path / "events.duckdb")

    def test_reopened_file_reads_everything(self, tmp_path):
        path = tmp_path / "events.duckdb"
        with el.connect(path) as store:
            store.append("s", [el.NewEvent({"i": 1}, type="T")])
        with el.connect(path) as store:
            assert store.head() == 1
            assert store.append("s", [el.NewEvent({"i": 2}, type="T")], expected_version=1) == 2
