"""The database the tests run on: SQLite files (default) or PostgreSQL (``GRIDBOOK_TEST_BACKEND=postgres``).

One conformance suite, every backend (issue 13): the tests ask this module for a database, never
for a file. On SQLite a database is a file in the test's temporary directory; on PostgreSQL it is a
database of its own on one cluster per test session, created empty or as a copy of a template
(``CREATE DATABASE … TEMPLATE``, PostgreSQL's copy of a whole database).

The cluster is ``GRIDBOOK_TEST_PG`` (a URL of a database with the right to create databases) when
set; otherwise a throwaway cluster started for the session: ``initdb`` and ``pg_ctl`` of Debian's
PostgreSQL, run as the ``postgres`` user when the tests run as root (``initdb`` refuses root),
listening only on a unix socket in a temporary directory, stopped and deleted at the end.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

from sync.store_pg import pg_tool

BACKEND = os.environ.get("GRIDBOOK_TEST_BACKEND", "sqlite")
POSTGRES = BACKEND == "postgres"
assert BACKEND in ("sqlite", "postgres"), f"GRIDBOOK_TEST_BACKEND={BACKEND!r}: sqlite or postgres"

# ORDER BY this for records in the order they were made: SQLite's rowid; PostgreSQL has none, and
# a record's creation time (the server's, to the microsecond) then its version (the feed position
# of its last write: increasing within one transaction) gives the same order.
CREATION_ORDER = "created_at, version" if POSTGRES else "rowid"

_cluster: dict[str, Any] = {}
_names = itertools.count(1)


def _start_cluster() -> str:
    """A throwaway cluster on a unix socket (the bench's, ``bench.pg.Cluster``), stopped at exit; its
    admin URL. fsync off: a test cluster is thrown away, never recovered; the tests kill servers, not it."""
    from bench.pg import Cluster

    cluster = Cluster(durable=False).__enter__()
    atexit.register(cluster.__exit__, None, None, None)
    return cluster.url()


def admin_url() -> str:
    if "url" not in _cluster:
        _cluster["url"] = os.environ.get("GRIDBOOK_TEST_PG") or _start_cluster()
    return str(_cluster["url"])


def url_of(name: str) -> str:
    """The URL of database ``name`` on the test cluster."""
    parts = urllib.parse.urlsplit(admin_url())
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def _admin_sql(sql: str) -> None:
    import psycopg
    with psycopg.connect(admin_url(), autocommit=True) as c:
        c.execute(sql)  # type: ignore[arg-type]


_made: list[str] = []
_kept: list[str] = []
_scratch: dict[str, str] = {}


def _new_name(keep: bool = False) -> str:
    name = f"gb_{os.getpid()}_{next(_names)}"
    (_kept if keep else _made).append(name)
    return name


def drop_made() -> None:
    """Drop the databases made since the last call (a test's, at its teardown): a database is
    megabytes, and a suite makes thousands."""
    _scratch.clear()
    while _made:
        _admin_sql(f"DROP DATABASE IF EXISTS {_made.pop()} WITH (FORCE)")


def drop_kept() -> None:
    """Drop the databases kept for the session (templates), at its end: a long-lived development
    cluster (``GRIDBOOK_TEST_PG``) would otherwise collect them."""
    while _kept:
        _admin_sql(f"DROP DATABASE IF EXISTS {_kept.pop()} WITH (FORCE)")


def new_db(tmp_path: Path, name: str = "gridbook.db", keep: bool = False) -> str:
    """A new, empty database: a file path in ``tmp_path`` or a ``postgresql://`` URL. PostgreSQL
    databases are dropped at the end of the test that made them, unless ``keep`` (a session's template)."""
    if not POSTGRES:
        return str(Path(tmp_path) / name)
    db = _new_name(keep)
    _admin_sql(f"CREATE DATABASE {db}")
    return url_of(db)


def copy_db(src: str, tmp_path: Path, name: str = "gridbook.db", keep: bool = False) -> str:
    """A copy of database ``src`` (closed: no connection may be open on it)."""
    if not POSTGRES:
        dest = str(Path(tmp_path) / name)
        shutil.copyfile(src, dest)
        return dest
    db = _new_name(keep)
    _admin_sql(f"CREATE DATABASE {db} TEMPLATE {urllib.parse.urlsplit(src).path.lstrip('/')}")
    return url_of(db)


def exists(db: str) -> bool:
    if not POSTGRES:
        return os.path.exists(db)
    from sync.store_pg import database_exists
    return database_exists(db)


def open_store(db: str) -> Any:
    """A store on ``db`` (SQLite path or PostgreSQL URL), as the server opens it."""
    from sync.store import open_store as open_
    return open_(db)


def connect(db: str) -> Any:
    """A plain connection to ``db`` for reading (and writing) behind the server's back, with
    ``execute(sql, params)`` taking ``?`` placeholders on both backends and ``close()``:
    ``sqlite3.connect`` on SQLite; on PostgreSQL the store's own connection class, which turns the
    placeholders into psycopg's."""
    if not POSTGRES:
        import sqlite3
        return sqlite3.connect(db)
    from sync.store_pg import _PgConn

    class Conn(_PgConn):
        def commit(self) -> None:
            """Each statement is committed already (autocommit), as sqlite3's ``commit`` ends."""
    return Conn(db)


def scratch_db() -> str:
    """PostgreSQL: one empty database for the running test, the same on every call within it
    (hypothesis examples reuse it; ``reset_db`` empties it between them). Dropped at the test's end."""
    assert POSTGRES
    if "db" not in _scratch:
        name = _new_name()
        _admin_sql(f"CREATE DATABASE {name}")
        _scratch["db"] = url_of(name)
    return _scratch["db"]


Snapshot = list[tuple[str, list[str], list[tuple[Any, ...]]]]


def _tables(conn: Any) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name")]


def snapshot(store: Any) -> Snapshot:
    """PostgreSQL: every row of every table of ``store``'s database (generated columns left out:
    the database computes them again), to be written into another by ``reset_db``."""
    assert POSTGRES
    out: Snapshot = []
    for t in _tables(store.conn):
        cols = [r[0] for r in store.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position", (t,))]
        rows = [tuple(r) for r in store.conn.execute(f"SELECT {', '.join(cols)} FROM {t}")]
        out.append((t, cols, rows))
    return out


def reset_db(store: Any, snap: Snapshot) -> None:
    """PostgreSQL: make ``store``'s database hold exactly ``snap`` (``snapshot``), schema included:
    the cheap per-example copy of a template (``CREATE DATABASE … TEMPLATE`` costs a checkpoint).
    Empties every table, loads the rows, and moves identity sequences past them."""
    assert POSTGRES
    c = store.conn
    if not _tables(c):
        store.migrate()     # the schema, once per database; its rows are replaced below
    c.execute("BEGIN")
    try:
        c.execute("TRUNCATE " + ", ".join(t for t, _, _ in snap) + " RESTART IDENTITY")
        for t, cols, rows in snap:
            if rows:
                c.executemany(f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        for t, col in c.execute("SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_schema = 'public' AND is_identity = 'YES'").fetchall():
            c.execute(f"SELECT setval(pg_get_serial_sequence('{t}', '{col}'), "
                      f"coalesce((SELECT max({col}) FROM {t}), 0) + 1, false)")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise


def backup_restored(store: Any, tmp_path: Path, name: str = "restored.db") -> str:
    """A new database restored from ``store``'s online backup, as an operator would do it: on
    SQLite the backup file is the database; on PostgreSQL it is a ``pg_dump`` file loaded into a new,
    empty database (``sync.store_pg.restore_into``, what ``python -m server restore`` runs)."""
    if not POSTGRES:
        dest = str(Path(tmp_path) / name)
        store.backup_to(dest)
        return dest
    dump = str(Path(tmp_path) / (name + ".sql"))
    store.backup_to(dump)
    from sync.store_pg import restore_into
    db = new_db(tmp_path)
    restore_into(db, dump)
    return db



def beside_db(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """``settings`` plus, on PostgreSQL, where the files a server keeps beside its database go (the
    console key, the blobs): on SQLite they default to ``<db>.key`` and ``<db>.blobs`` in the test's
    directory already; a URL has no directory, and the default there (``data/<name>…`` under the
    working directory) would write into the checkout."""
    if POSTGRES:
        settings.setdefault("secret_key_file", str(Path(tmp_path) / "gridbook.key"))
        settings.setdefault("blob_dir", str(Path(tmp_path) / "gridbook.blobs"))
    return settings


def contents(db: str) -> bytes:
    """Everything ``db`` holds, as bytes, for "X is not in the database" checks: the SQLite file
    itself; on PostgreSQL a ``pg_dump`` of it (every row as text)."""
    if not POSTGRES:
        with open(db, "rb") as fh:
            return fh.read()
    return subprocess.run([pg_tool("pg_dump"), "--dbname", db], check=True, capture_output=True).stdout
