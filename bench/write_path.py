"""The write path in-process: new records pushed through ``sync.engine.push``, no HTTP, no server.

    .venv/bin/python bench/write_path.py [--records 5000] [--batch 500] [--profile]

Builds the tests' small town (``tests/conftest.py`` ``build_town``) in a temporary SQLite database,
gives grid 1 some households, then pushes ``--records`` new records as grid worker 1 in batches of
``--batch`` (the mix of ``bench/workload.py`` ``write_batch``: 70% visits, 20% residents, 10%
matters). It prints:

- records per wall second and per CPU second of this process (CPU time is the steadier figure on a
  shared machine: it does not count the time other processes held the cores);
- the CPU microseconds per record, and with ``--profile`` how much of it is SQLite (the time spent
  inside the ``sqlite3`` calls) and how much is Python around them;
- SQL statements per record, counted with ``sqlite3``'s trace callback in a second, separate run on
  a fresh database (so the count costs the timed run nothing);
- with ``--profile``, the cProfile top 20 by own time of a third run.

Every run starts from the same database and the same records (the workload is deterministic), so
two commits compare on equal terms. Results must all be ``applied``: the bench fails otherwise.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "bench")]

from sync import engine  # noqa: E402
from sync.store import SQLiteStore  # noqa: E402
from tests.conftest import Town, build_town  # noqa: E402
from workload import DAY, write_batch  # noqa: E402


def town_with_households(path: str, households: int) -> tuple[SQLiteStore, Town, list[str]]:
    """The small town of the tests with ``households`` households in grid 1, pushed by worker 1."""
    store = SQLiteStore(path)
    store.migrate()
    town = build_town(store)
    ids = [str(uuid.UUID(int=i + 1, version=4)) for i in range(households)]
    muts = [town.mut("households", hid, {"grid_id": town.ids["g1"], "address": f"杖锡村上岙{i + 1}号",
                                         "head_name": "王阿公"}) for i, hid in enumerate(ids)]
    for i in range(0, len(muts), 500):
        assert all(r.status == "applied" for r in town.push("w1", *muts[i:i + 500]))
    return store, town, ids


def batches(households: list[str], records: int, size: int) -> list[bytes]:
    """The push bodies: ``records`` new records in batches of ``size``, mids and times deterministic."""
    rows = write_batch(households, records)
    bodies = []
    for start in range(0, len(rows), size):
        muts = [{"mid": str(uuid.UUID(int=(1 << 64) + start + i, version=4)), "collection": coll, "id": rid,
                 "op": "upsert", "base": 0, "fields": fields,
                 "at": (DAY + timedelta(seconds=30 * (start + i))).isoformat()}
                for i, (coll, rid, fields) in enumerate(rows[start:start + size])]
        bodies.append(json.dumps({"protocol": 1, "mutations": muts}, ensure_ascii=False).encode())
    return bodies


def run(households: int, records: int, size: int,
        around: Callable[[SQLiteStore, Callable[[], None]], None] | None = None) -> tuple[float, float]:
    """One run on a fresh database: (wall seconds, CPU seconds) of the pushes alone."""
    with tempfile.TemporaryDirectory(prefix="gridbook-write-") as tmp:
        store, town, ids = town_with_households(os.path.join(tmp, "bench.db"), households)
        bodies = batches(ids, records, size)
        actor = town.actors["w1"]

        def pushes() -> None:
            for body in bodies:
                results = engine.push(store, actor, body).results
                bad = [r for r in results if r.status != "applied"]
                assert not bad, bad[:3]

        wall, cpu = time.perf_counter(), time.process_time()
        if around is None:
            pushes()
        else:
            around(store, pushes)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        store.close()
    return wall, cpu


def count_statements(store: SQLiteStore, work: Callable[[], None]) -> None:
    counted: list[str] = []
    store.conn.set_trace_callback(counted.append)
    try:
        work()
    finally:
        store.conn.set_trace_callback(None)
    STATEMENTS.extend(counted)


STATEMENTS: list[str] = []
PROFILE = cProfile.Profile()


def profiled(store: SQLiteStore, work: Callable[[], None]) -> None:
    PROFILE.runcall(work)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--households", type=int, default=60)
    ap.add_argument("--runs", type=int, default=3, help="timed runs; the best is reported (least disturbed)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile top 20 of one more run")
    args = ap.parse_args(argv)
    n = args.records
    timed = [run(args.households, n, args.batch) for _ in range(args.runs)]
    wall = min(w for w, _ in timed)
    cpu = min(c for _, c in timed)
    run(args.households, n, args.batch, count_statements)
    kinds: dict[str, int] = {}
    for s in STATEMENTS:
        word = s.split(None, 1)[0].upper() if s.strip() else "?"
        kinds[word] = kinds.get(word, 0) + 1
    print(f"write path: {n} new records (70% visits, 20% residents, 10% matters) in batches of {args.batch}, "
          f"best of {args.runs} runs")
    print(f"  {n / wall:8,.0f} records per wall second   ({wall:.2f} s)")
    print(f"  {n / cpu:8,.0f} records per CPU second    ({cpu:.2f} s, {cpu / n * 1e6:.0f} µs per record)")
    print(f"  {len(STATEMENTS) / n:8.2f} SQL statements per record  "
          + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
    if args.profile:
        run(args.households, n, args.batch, profiled)
        stats = pstats.Stats(PROFILE)
        raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        total = sum(v[2] for v in raw.values())
        in_sqlite = sum(v[2] for k, v in raw.items() if "sqlite3.Connection" in k[2] or "sqlite3.Cursor" in k[2])
        print(f"  profiled: {total / n * 1e6:.0f} µs per record, of which {in_sqlite / n * 1e6:.0f} µs inside sqlite3 "
              f"calls and {(total - in_sqlite) / n * 1e6:.0f} µs Python (profiling inflates the Python part)")
        out = io.StringIO()
        pstats.Stats(PROFILE, stream=out).sort_stats("tottime").print_stats(20)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
