"""Run the fault-injection harness and print its figures.

    .venv/bin/python -m bench.faults --runs 10000 --seed 1      # the long version (make faults)
    .venv/bin/python -m bench.faults --runs 300 --seed 7        # about what make test runs
    .venv/bin/python -m bench.faults --runs 1 --seed 1 --first 4711   # replay one run
    .venv/bin/python -m bench.faults --servers 2 --db postgres --runs 200   # two servers, one PostgreSQL database

``--db postgres`` makes a database of its own on the cluster of ``GRIDBOOK_TEST_PG`` (or on a
throwaway cluster, as the tests do: ``tests/backend.py``) and drops it at the end; ``--db`` may
also be the URL of an empty PostgreSQL database, or a SQLite path (default: a file in the
work directory).

A run that fails the oracle is listed with its seed and number; replay it with ``--first N
--runs 1`` (the same seed and number give the same edits, the same faults at the same requests).
Exit status 1 if any run failed, anything was lost or duplicated, or the server logged an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from sync.store import is_postgres

from .harness import Figures, Harness, Settings


def summary(f: Figures, seconds: float) -> dict[str, object]:
    return {
        "runs": f.runs, "failed_runs": len(f.failed), "phones": f.phones, "steps": f.steps,
        "requests": f.requests, "faults_injected": f.faults_injected,
        "faults": {**{k: n for k, n in sorted(f.faults.items())}, "graceful_restart": f.restarts},
        "kills_before_the_answer": f.faults["kill"] - f.faults["kill_after_answer"],
        "mutations": f.mutations, "results": dict(sorted(f.results.items())),
        "conflicts": dict(sorted(f.conflicts.items())), "field_conflicts_with_both_values": f.both_values,
        "rejections_seen_by_author": f.rejections_seen, "batches_resent": f.resends,
        "cursor_expired": f.cursor_expired, "losses": f.losses, "duplicates": f.duplicates,
        "server_errors_logged": f.server_errors,
        "requests_per_server": dict(sorted(f.served.items())), "kills_per_server": dict(sorted(f.killed.items())),
        "seconds": round(seconds, 1), "runs_per_second": round(f.runs / seconds, 2) if seconds else None,
        "failures": f.failed[:20],
    }


@contextlib.contextmanager
def database(choice: str | None, workdir: Path) -> Iterator[str | None]:
    """The database of a batch of runs: ``None`` (the harness's SQLite file), a path or URL as
    given, or ``postgres``: a new database on the test cluster, dropped afterwards."""
    if choice in (None, "", "sqlite"):
        yield None
        return
    if choice != "postgres":
        if is_postgres(choice):
            from sync.store_pg import database_exists
            if database_exists(choice):
                raise SystemExit(f"{choice} holds a Gridbook database: the harness overwrites it; give an empty one")
        yield choice
        return
    from tests import backend
    name = f"gb_faults_{os.getpid()}"
    backend._admin_sql(f"CREATE DATABASE {name}")
    try:
        yield backend.url_of(name)
    finally:
        backend._admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first", type=int, default=0, help="number of the first run (to replay one)")
    ap.add_argument("--fault-rate", type=float, default=Settings.fault_rate)
    ap.add_argument("--kill-rate", type=float, default=Settings.kill_rate)
    ap.add_argument("--restart-rate", type=float, default=Settings.restart_rate)
    ap.add_argument("--max-seconds", type=float, default=0, help="stop starting runs after this long (0: no limit)")
    ap.add_argument("--servers", type=int, default=1, help="server processes on the one database (default 1)")
    ap.add_argument("--db", help="sqlite (default), postgres (a new database on the test cluster), "
                                 "or the path or URL of an empty database")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--workdir", help="where the database and the server log go (default: a temporary directory)")
    args = ap.parse_args(argv)
    settings = Settings(fault_rate=args.fault_rate, kill_rate=args.kill_rate, restart_rate=args.restart_rate)
    t0 = time.perf_counter()

    def progress(total: Figures, seconds: float) -> None:
        if total.runs % 500 == 0 or (args.runs < 500 and total.runs % 50 == 0):
            print(f"  {total.runs} runs, {len(total.failed)} failed, {total.runs / seconds:.2f} runs/s",
                  file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gridbook-faults-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with database(args.db, workdir) as db, Harness(workdir, args.seed, settings, db=db,
                                                       servers=args.servers) as h:
            kind = "postgres" if db and is_postgres(db) else "sqlite"
            total = h.runs(args.first, args.runs, max_seconds=args.max_seconds, progress=progress)
            if total.failed:
                print(f"--- server log (last lines) ---\n{h.log()}", file=sys.stderr)
    out = {"db": kind, "servers": args.servers, **summary(total, time.perf_counter() - t0)}
    text = json.dumps(out, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 1 if total.failed or total.losses or total.duplicates or total.server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
