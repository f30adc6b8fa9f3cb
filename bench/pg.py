"""PostgreSQL for the benchmark: a throwaway cluster, a database copied from a SQLite one, and the
schema's own write limit on either backend.

- ``Cluster`` starts Debian's PostgreSQL on a unix socket in a temporary directory (as the
  ``postgres`` user when run as root: ``initdb`` refuses root) and stops and deletes it at the end.
  The bench keeps ``fsync`` on (a benchmark of durable writes must pay for them); the test suite's
  cluster is the same class with it off (``tests/backend.py``).
- ``copy_from_sqlite`` puts the rows of a SQLite database the bench built through the engine into a
  new PostgreSQL database (``COPY``), so that both backends are measured on the same records. The
  county database of a million records took ten minutes to push through the engine once; pushing it
  again on PostgreSQL would measure the build, not the pulls.
- ``schema_limit`` is the figure the issue asks the write path to be compared with: the rows the
  engine itself writes for N new records (the record, its change-feed rows, its push result, the
  counter), prebuilt, and inserted by SQL alone, in transactions of 500 as a push of 500 is.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from sync import accounts, engine
from sync.protocol import MutationIn, PushRequest
from sync.schema import COLLECTIONS
from sync.store import open_store
from sync.store_pg import pg_tool

from . import workload
from .serverdb import Grid


class Cluster:
    """A throwaway PostgreSQL cluster on a unix socket; ``durable`` keeps fsync on (benchmarks)."""

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable
        self.root = tempfile.mkdtemp(prefix="gridbook-pg-")
        self.data = os.path.join(self.root, "data")
        self.as_postgres: list[str] = []

    def __enter__(self) -> "Cluster":
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o700)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self.as_postgres, pg_tool("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-locale"], check=True, stdout=subprocess.DEVNULL)
        opts = f"-k {self.root} -c listen_addresses='' -c max_connections=400 -c shared_buffers=512MB"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run([*self.as_postgres, pg_tool("pg_ctl"), "-D", self.data, "-o", opts, "-l",
                        os.path.join(self.root, "log"), "-w", "start"], check=True, stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: Any) -> None:
        subprocess.run([*self.as_postgres, pg_tool("pg_ctl"), "-D", self.data, "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, name: str = "postgres") -> str:
        return f"postgresql://postgres@/{name}?host={urllib.parse.quote(self.root, safe='')}"

    def create(self, name: str) -> str:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
            c.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)


def _tables(lite: sqlite3.Connection) -> list[str]:
    return [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%' AND name != 'migrations'")]


def copy_from_sqlite(sqlite_path: Path, cluster: Cluster, name: str) -> str:
    """A new PostgreSQL database holding every row of the SQLite database; its URL."""
    import psycopg
    url = cluster.create(name)
    store = open_store(url)
    store.migrate()
    store.close()
    lite = sqlite3.connect(str(sqlite_path))
    with psycopg.connect(url) as pg:
        for table in _tables(lite):
            cols = [r[0] for r in pg.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_generated = 'NEVER' "
                "ORDER BY ordinal_position", (table,))]
            pg.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
            with pg.cursor().copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:  # type: ignore[arg-type]
                for row in lite.execute(f"SELECT {', '.join(cols)} FROM {table}"):
                    cp.write_row(row)
        pg.execute("SELECT setval(pg_get_serial_sequence('audit', 'id'), coalesce((SELECT max(id) FROM audit), 0) + 1, "
                   "false)")
        pg.commit()
    lite.close()
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE")
    return url


# -- the schema's own limit -------------------------------------------------------------------------
WRITTEN = {"feed": ("collection", "id"), "mutation_log": ("user_id", "mid")}


def engine_rows(db: str, grid: Grid, n: int, salt: str) -> dict[str, list[tuple[Any, ...]]]:
    """Push ``n`` new records through the engine into ``db`` (a scratch copy) and return the rows it
    wrote, per table, with their column names first."""
    store = open_store(db)
    user = store.user_by_username(grid.workers[0])
    assert user is not None
    actor = accounts.authenticate(store, accounts.register_device(store, user, "schema-limit").token)
    recs = workload.write_batch(grid.work.households, n, salt=salt)
    mids = []
    for i in range(0, n, 500):
        chunk = []
        for coll, rid, fields in recs[i:i + 500]:
            mid = str(uuid.uuid4())
            mids.append(mid)
            chunk.append(MutationIn(mid=mid, collection=coll, id=rid, op="upsert", base=0, fields=fields,
                                    at="2026-12-07T09:00:00+08:00"))
        res = engine.push(store, actor, PushRequest(protocol=1, mutations=chunk))
        assert all(r.status == "applied" for r in res.results), res.results[:1]
    out: dict[str, list[tuple[Any, ...]]] = {}
    ids = {(c, r) for c, r, _ in recs}
    c = store.conn
    for coll in sorted({c_ for c_, _, _ in recs}):
        assert coll in COLLECTIONS
        wanted = [r for c_, r, _ in recs if c_ == coll]
        q = "SELECT id, version, deleted, data, meta, keys, created_at, updated_at, created_by, updated_by FROM " \
            f"{coll} WHERE id IN ({','.join('?' * len(wanted))})"
        out[coll] = [("id", "version", "deleted", "data", "meta", "keys", "created_at", "updated_at", "created_by",
                      "updated_by")] + [tuple(r) for r in c.execute(q, wanted)]
    feed = [tuple(r) for r in c.execute("SELECT key, collection, id, seq FROM feed WHERE seq > ?",
                                        (min(r[1] for t in out.values() for r in t[1:]) - 1,))
            if (r[1], r[2]) in ids]
    out["feed"] = [("key", "collection", "id", "seq")] + feed
    ours = set(mids)
    log = [tuple(r) for r in c.execute("SELECT user_id, mid, device_id, result, created_at FROM mutation_log "
                                       "WHERE user_id = ?", (actor.user_id,)) if r[1] in ours]
    out["mutation_log"] = [("user_id", "mid", "device_id", "result", "created_at")] + log
    store.close()
    return out


def schema_limit(db: str, rows: dict[str, list[tuple[Any, ...]]], n: int, batch: int = 500) -> dict[str, Any]:
    """Insert the engine's rows for ``n`` records into ``db`` (the database before the push) by SQL
    alone, in transactions of ``batch`` records as the pushes were: records/s."""
    store = open_store(db, writer=True)    # as the server's writer: its page cache and settings
    c = store.conn
    # records in push order, their feed and log rows with them
    order = [(coll, r) for coll, t in rows.items() if coll not in WRITTEN for r in t[1:]]
    order.sort(key=lambda x: x[1][1])      # by version: the order the engine wrote them
    feed_of: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for r in rows["feed"][1:]:
        feed_of.setdefault((r[1], r[2]), []).append(r)
    logs = rows["mutation_log"][1:]
    secs = 0.0
    timed = 0
    for i in range(0, len(order), batch):
        part = order[i:i + batch]
        per_coll: dict[str, list[tuple[Any, ...]]] = {}
        for coll, r in part:
            per_coll.setdefault(coll, []).append(r)
        feed = [f for coll, r in part for f in feed_of.get((coll, r[0]), [])]
        log = logs[i:i + batch]
        head = max(r[1] for _, r in part)
        t0 = time.perf_counter()
        with store.transaction():
            for coll, rs in per_coll.items():
                c.executemany(f"INSERT INTO {coll} ({', '.join(rows[coll][0])}) VALUES "
                              f"({', '.join('?' * len(rows[coll][0]))})", rs)
            c.executemany("INSERT INTO feed (key, collection, id, seq) VALUES (?, ?, ?, ?)", feed)
            c.executemany("INSERT INTO mutation_log VALUES (?, ?, ?, ?, ?)", log)
            c.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (head,))
        if i or len(order) <= batch:   # the first of several warms the cache, as earlier pushes did the server's
            secs += time.perf_counter() - t0
            timed += len(part)
    store.close()
    return {"rate": timed / secs, "records": len(order), "feed_rows": len(rows["feed"]) - 1}
