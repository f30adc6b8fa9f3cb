"""A pull page costs the same whether the database holds ten thousand records or far more.

Two checks: every statement a pull runs is an index search (EXPLAIN QUERY PLAN), and the
number of SQLite virtual-machine steps of a page does not grow when other grids' records are
added (counted with a progress handler: deterministic, not a timing).
"""

from __future__ import annotations

import uuid

from sync import engine
from sync.store import SQLiteStore, dumps

from .conftest import Town

ALLOWED_SCANS = ("SCAN (subquery", "SCAN f")   # the merge of the per-key subqueries (aliased: PostgreSQL needs it)


def traced_pull(store: SQLiteStore, town: Town, who: str, cursor: str | None, limit: int) -> tuple[list[str], object]:
    stmts: list[str] = []
    store.conn.set_trace_callback(stmts.append)
    try:
        page = engine.pull(store, town.actors[who], cursor, limit)
    finally:
        store.conn.set_trace_callback(None)
    return [s for s in stmts if not s.strip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))], page


def test_every_pull_statement_is_an_index_search(town: Town) -> None:
    for _ in range(5):
        town.household()
    stmts, page = traced_pull(town.store, town, "w1", None, 3)
    stmts2, _ = traced_pull(town.store, town, "w1", page.cursor, 3)
    assert stmts and stmts2
    for sql in stmts + stmts2:
        plan = [row[3] for row in town.store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        for line in plan:
            assert "TEMP B-TREE" not in line, (sql, plan)
            if line.startswith("SCAN"):
                assert line.startswith(ALLOWED_SCANS), (sql, plan)


def add_other_grid(store: SQLiteStore, n: int, start: int) -> None:
    """Bulk rows of another grid (as a county's worth of data would be), straight into the tables."""
    key = f"a:{uuid.uuid4()}"
    rows, feed = [], []
    for i in range(n):
        rid = str(uuid.uuid4())
        seq = start + i
        rows.append((rid, seq, dumps({"grid_id": key[2:], "address": f"某村{i}号", "head_name": "某"}), "{}",
                     dumps([key]), "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"))
        feed.append((key, "households", rid, seq))
    store.conn.execute("BEGIN")
    store.conn.executemany("INSERT INTO households (id, version, deleted, data, meta, keys, created_at, updated_at) "
                           "VALUES (?, ?, 0, ?, ?, ?, ?, ?)", rows)
    store.conn.executemany("INSERT INTO feed VALUES (?, ?, ?, ?)", feed)
    store.conn.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (start + n,))
    store.conn.execute("COMMIT")


def vm_steps(store: SQLiteStore, town: Town, who: str, cursor: str | None, limit: int) -> int:
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    store.conn.set_progress_handler(tick, 10)
    try:
        engine.pull(store, town.actors[who], cursor, limit)
    finally:
        store.conn.set_progress_handler(None, 0)
    return steps[0]


def test_page_cost_does_not_grow_with_the_database(town: Town) -> None:
    for _ in range(30):
        town.household()
    small = [vm_steps(town.store, town, "w1", None, 20) for _ in range(3)]
    add_other_grid(town.store, 150_000, town.store.current_seq() + 1)
    big = [vm_steps(town.store, town, "w1", None, 20) for _ in range(3)]
    assert min(big) <= min(small) * 1.25, (small, big)
