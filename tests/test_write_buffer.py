"""The batch write path's buffers (issue 13): a push writes its records with one statement per
collection, and a savepoint opened lazily still undoes exactly its own mutation.

Record rows of a write transaction are buffered (``SQLiteStore.put``) and written before the next
statement that may read, or at commit; savepoints reach the database only when a statement runs
inside one. These tests run on both backends (``tests/backend.py``).
"""

from __future__ import annotations

from typing import Any

from sync.store import SQLiteStore, StoredRecord

from .conftest import Town, new_id


def _rec(coll: str, rid: str, version: int, keys: list[str]) -> StoredRecord:
    return StoredRecord(coll, rid, version, False, {"address": rid}, {}, keys, "2026-12-07T00:00:00+00:00",
                        "2026-12-07T00:00:00+00:00", "u", "u")


def test_a_rolled_back_savepoint_undoes_its_own_rows_only(store: SQLiteStore) -> None:
    a, b, c = new_id(), new_id(), new_id()
    with store.transaction():
        with store.savepoint():
            seq = store.next_seq()
            store.put(_rec("households", a, seq, ["a:x"]), [], seq)          # buffered
        try:
            with store.savepoint():
                seq = store.next_seq()
                store.put(_rec("households", b, seq, ["a:x"]), [], seq)      # buffered …
                store.set_keys("households", a, ["a:x"], ["a:y"], seq)       # … a statement: the savepoint opens
                raise RuntimeError("rejected after writing")
        except RuntimeError:
            pass
        with store.savepoint():
            seq = store.next_seq()
            store.put(_rec("households", c, seq, ["a:x"]), [], seq)
        assert store.get("households", b) is None          # read inside the transaction
    ra, rc = store.get("households", a), store.get("households", c)
    assert ra is not None and rc is not None and store.get("households", b) is None
    assert ra.keys == ["a:x"], "the key change made inside the rolled-back savepoint is undone"
    ids = {i for _, _, i in store.feed_page(["a:x", "a:y"], 0, 100)}
    assert ids == {a, c}


def test_nested_savepoints_keep_what_the_outer_one_wrote(store: SQLiteStore) -> None:
    a, b = new_id(), new_id()
    with store.transaction():
        with store.savepoint():                       # a group commit's push …
            seq = store.next_seq()
            store.put(_rec("households", a, seq, ["a:x"]), [], seq)
            try:
                with store.savepoint():               # … and its second mutation, rejected
                    seq = store.next_seq()
                    store.put(_rec("households", b, seq, ["a:x"]), [], seq)
                    assert store.get_many("households", [new_id()]) == {}   # a statement inside it
                    raise RuntimeError
            except RuntimeError:
                pass
    assert store.get("households", a) is not None and store.get("households", b) is None


def test_a_push_of_new_records_writes_them_in_a_few_statements(town: Town) -> None:
    statements: list[str] = []
    hid = new_id()
    town.push("w1", town.mut("households", hid, {"grid_id": town.ids["g1"], "address": "上岙1号", "head_name": "王阿公"}))
    muts: list[dict[str, Any]] = []
    for i in range(200):     # a field day's records: visits
        muts.append(town.mut("visits", new_id(), {"household_id": hid, "visited_at": "2026-11-01T09:00:00+08:00",
                                                  "narrative": f"第{i}次走访"}))
    town.store.conn.set_trace_callback(statements.append)
    try:
        results = town.push("w1", *muts)
    finally:
        town.store.conn.set_trace_callback(None)
    assert [r.status for r in results] == ["applied"] * 200
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO VISITS")]
    # SQLite's trace shows each row of an executemany; PostgreSQL's wrapper one call per executemany
    assert inserts, statements[:20]
    assert sum(s.upper().startswith("SAVEPOINT") for s in statements) <= 2, "a savepoint per mutation"
    other = [s for s in statements if not s.lstrip().upper().startswith(("INSERT INTO VISITS", "INSERT INTO FEED",
                                                                       "INSERT INTO MUTATION_LOG"))]
    assert len(other) < 40, other     # prefetches, the clock, the counter, the device: not per record
