"""A pull page costs the same whether the database holds ten thousand records or far more.

Two checks: every statement a pull runs is an index search (EXPLAIN QUERY PLAN), and the
number of SQLite virtual-machine steps of a page does not grow when other grids' records are
added (counted with a progress handler: deterministic, not a timing).

On PostgreSQL the same two, in its terms: the plan of every statement (EXPLAIN, sequential scans
disabled so that the tiny test tables do not make them cheaper) reads tables only through their
indexes, the feed through ``feed_key_seq``, and sorts nothing; and the rows a page's plan nodes
handle, those read and then filtered out included (EXPLAIN ANALYZE: a count, not a timing, the
analogue of SQLite's VM steps), do not grow when other grids' records are added, with the
planner free to choose. (Buffers touched would grow by a B-tree level: logarithmic, not a scan.)
"""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest

from sync import engine
from sync.store import SQLiteStore, dumps

from . import backend
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


def two_pages(town: Town, trace: Any) -> list[Any]:
    """The statements of worker1's first two pages of three, as ``trace`` gives them."""
    for _ in range(5):
        town.household()
    stmts, page = trace(town.store, town, "w1", None, 3)
    stmts2, _ = trace(town.store, town, "w1", page.cursor, 3)
    assert stmts and stmts2
    return [*stmts, *stmts2]


@pytest.mark.skipif(backend.POSTGRES, reason="SQLite's EXPLAIN QUERY PLAN; PostgreSQL's plans: the _pg test below")
def test_every_pull_statement_is_an_index_search(town: Town) -> None:
    for sql in two_pages(town, traced_pull):
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


@pytest.mark.skipif(backend.POSTGRES, reason="SQLite's VM step counter; PostgreSQL's row counts: the _pg test below")
def test_page_cost_does_not_grow_with_the_database(town: Town) -> None:
    for _ in range(30):
        town.household()
    small = [vm_steps(town.store, town, "w1", None, 20) for _ in range(3)]
    add_other_grid(town.store, 150_000, town.store.current_seq() + 1)
    big = [vm_steps(town.store, town, "w1", None, 20) for _ in range(3)]
    assert min(big) <= min(small) * 1.25, (small, big)


# -- PostgreSQL ----------------------------------------------------------------------------------

def pg_statements(store: SQLiteStore, town: Town, who: str, cursor: str | None,
                  limit: int) -> tuple[list[tuple[str, Any]], Any]:
    """The statements of a pull with their parameters (EXPLAIN needs the values)."""
    calls: list[tuple[str, Any]] = []
    conn: Any = store.conn.raw      # the PostgreSQL connection under the store's buffering wrapper
    real = conn.execute

    def spy(sql: str, params: Any = None) -> Any:
        calls.append((sql, params))
        return real(sql, params)
    conn.execute = spy
    try:
        page = engine.pull(store, town.actors[who], cursor, limit)
    finally:
        del conn.execute
    return [(sql, p) for sql, p in calls if not sql.strip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))], page


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


@pytest.mark.skipif(not backend.POSTGRES, reason="PostgreSQL's plans; SQLite's: the test above")
def test_every_pull_statement_is_an_index_search_pg(town: Town) -> None:
    stmts = two_pages(town, pg_statements)
    feed_read = False
    town.store.conn.execute("SET enable_seqscan = off")
    try:
        for sql, params in stmts:
            plan = town.store.conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]
            for n in plan_nodes(plan):
                assert n["Node Type"] not in ("Seq Scan", "Sort", "Incremental Sort"), (sql, plan)
                if n.get("Relation Name") == "feed":
                    assert n.get("Index Name") == "feed_key_seq", (sql, plan)
                    feed_read = True
    finally:
        town.store.conn.execute("RESET enable_seqscan")
    assert feed_read


def pg_rows(store: SQLiteStore, town: Town, who: str, cursor: str | None, limit: int, at_scale: bool) -> int:
    """Rows the plan nodes of a pull page's statements handle, those read and filtered out
    included, as EXPLAIN ANALYZE counts them; ``at_scale``: and the planner, free to choose, reads
    the big tables through indexes."""
    stmts, _ = pg_statements(store, town, who, cursor, limit)
    total = 0
    for sql, params in stmts:
        plan = store.conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]
        assert not at_scale or all(n["Node Type"] != "Seq Scan" or n.get("Relation Name") not in ("feed", "households")
                                   for n in plan_nodes(plan)), (sql, plan)
        total += sum((n["Actual Rows"] + n.get("Rows Removed by Filter", 0) + n.get("Rows Removed by Index Recheck", 0))
                     * n["Actual Loops"] for n in plan_nodes(plan))
    return total


@pytest.mark.skipif(not backend.POSTGRES, reason="PostgreSQL's row counts; SQLite's VM steps: the test above")
def test_page_cost_does_not_grow_with_the_database_pg(town: Town) -> None:
    for _ in range(30):
        town.household()
    town.store.conn.execute("ANALYZE")
    small = [pg_rows(town.store, town, "w1", None, 20, False) for _ in range(3)]
    add_other_grid(town.store, 150_000, town.store.current_seq() + 1)
    town.store.conn.execute("ANALYZE")     # what autovacuum does after a bulk load
    big = [pg_rows(town.store, town, "w1", None, 20, True) for _ in range(3)]
    assert min(big) <= min(small) * 1.25, (small, big)
