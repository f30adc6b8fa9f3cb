"""Group commit (issue 13): pushes that wait for the writer share the next transaction, each still
all or nothing on its own, exactly once, and none returns before the commit that holds it."""

from __future__ import annotations

import json
import threading
from typing import Any

from sync import engine
from sync.store import SQLiteStore

from .conftest import Town, new_id


def _commits(store: SQLiteStore) -> list[int]:
    seen = [0]

    def trace(sql: str) -> None:
        if sql.strip().upper() == "COMMIT":
            seen[0] += 1
    store.conn.set_trace_callback(trace)
    return seen


def test_waiting_work_shares_one_transaction_and_a_failure_stays_its_own(store: SQLiteStore) -> None:
    store.conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    commits = _commits(store)
    first_inside, others_queued = threading.Event(), threading.Event()
    out: dict[str, Any] = {}

    def slow() -> str:
        first_inside.set()
        others_queued.wait(10)          # hold the writer until the others are waiting
        store.conn.execute("INSERT INTO t VALUES (1)")
        return "a"

    def good() -> str:
        store.conn.execute("INSERT INTO t VALUES (2)")
        return "c"

    def bad() -> str:
        store.conn.execute("INSERT INTO t VALUES (3)")
        raise RuntimeError("this push fails on its own")

    def run(name: str, work: Any) -> None:
        try:
            out[name] = store.grouped(work)
        except RuntimeError as e:
            out[name] = e

    a = threading.Thread(target=run, args=("a", slow))
    a.start()
    assert first_inside.wait(10)
    b = threading.Thread(target=run, args=("b", bad))
    c = threading.Thread(target=run, args=("c", good))
    b.start()
    c.start()
    for _ in range(200):                  # both are queued behind the leader
        with store._group:
            if len(store._queue) == 2:
                break
        threading.Event().wait(0.01)
    others_queued.set()
    for th in (a, b, c):
        th.join(10)
    assert out["a"] == "a" and out["c"] == "c" and isinstance(out["b"], RuntimeError)
    assert sorted(r[0] for r in store.conn.execute("SELECT x FROM t")) == [1, 2]   # b's row undone alone
    assert commits[0] == 2                                                       # a; then b and c together


def test_concurrent_pushes_and_retries_apply_exactly_once(town: Town) -> None:
    store = town.store
    households = [town.household("w1") for _ in range(4)]
    bodies = []
    for i in range(24):
        muts = [{"mid": new_id(), "collection": "visits", "id": new_id(), "op": "upsert", "base": 0,
                 "fields": {"household_id": households[(i + k) % 4], "visited_at": "2026-11-20T09:00:00+08:00",
                            "narrative": f"走访{i}-{k}"}, "at": town.at()} for k in range(5)]
        bodies.append(json.dumps({"protocol": 1, "mutations": muts}).encode())
    results: dict[int, list[Any]] = {}
    start = threading.Barrier(48)

    def phone(i: int, body: bytes) -> None:
        start.wait(10)
        results[i] = engine.push(store, town.actors["w1"], body).results

    # every batch twice at the same moment: a phone that retried while its first request still waited
    threads = [threading.Thread(target=phone, args=(i, bodies[i % 24])) for i in range(48)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert len(results) == 48
    for i in range(24):
        first, again = results[i], results[i + 24]
        assert [r.status for r in first] == ["applied"] * 5
        assert [(r.mid, r.status, r.version) for r in first] == [(r.mid, r.status, r.version) for r in again]
    assert store.conn.execute("SELECT count(*) FROM visits").fetchone()[0] == 24 * 5
    assert store.conn.execute("SELECT count(*) FROM mutation_log").fetchone()[0] >= 24 * 5
    versions = [r.version for i in range(24) for r in results[i]]
    assert len(set(versions)) == len(versions)                 # every version given out once
