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
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

BACKEND = os.environ.get("GRIDBOOK_TEST_BACKEND", "sqlite")
POSTGRES = BACKEND == "postgres"
assert BACKEND in ("sqlite", "postgres"), f"GRIDBOOK_TEST_BACKEND={BACKEND!r}: sqlite or postgres"

_cluster: dict[str, Any] = {}
_names = itertools.count(1)


def _pg_bin(name: str) -> str:
    base = "/usr/lib/postgresql"
    versions = sorted((v for v in os.listdir(base) if v.isdigit()), key=int) if os.path.isdir(base) else []
    for v in reversed(versions):
        p = os.path.join(base, v, "bin", name)
        if os.path.exists(p):
            return p
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: install Debian's postgresql (make test does)")
    return found


def _start_cluster() -> str:
    """A throwaway cluster on a unix socket; its admin URL."""
    root = tempfile.mkdtemp(prefix="gridbook-pg-")
    data, sock = os.path.join(root, "data"), root
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o700)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, _pg_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                    "--no-locale"], check=True, stdout=subprocess.DEVNULL)
    # fsync off: a test cluster is thrown away, never recovered; the tests kill servers, not it.
    opts = (f"-k {sock} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=400 -c shared_buffers=256MB")
    subprocess.run([*as_postgres, _pg_bin("pg_ctl"), "-D", data, "-o", opts, "-l", os.path.join(root, "log"),
                    "-w", "start"], check=True, stdout=subprocess.DEVNULL)

    def stop() -> None:
        subprocess.run([*as_postgres, _pg_bin("pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
    atexit.register(stop)
    return f"postgresql://postgres@/postgres?host={urllib.parse.quote(sock, safe='')}"


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


def _new_name(keep: bool = False) -> str:
    name = f"gb_{os.getpid()}_{next(_names)}"
    if not keep:
        _made.append(name)
    return name


def drop_made() -> None:
    """Drop the databases made since the last call (a test's, at its teardown): a database is
    megabytes, and a suite makes thousands."""
    while _made:
        _admin_sql(f"DROP DATABASE IF EXISTS {_made.pop()} WITH (FORCE)")


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
