"""The same store on PostgreSQL (issue 13): a city or province runs several servers on one database.

``PostgresStore`` is ``SQLiteStore`` with another connection and dialect: every query of the engine
and the console is written once, in ``sync/store.py``; here are only what PostgreSQL does otherwise.

- **SQL text.** Queries are written with ``?`` (and ``:name``) placeholders; ``_PgConn`` turns them
  into psycopg's ``%s`` (and ``%(name)s``) outside string literals, once per distinct statement. The
  dialect methods (``_jt``, ``_in_list``, ``_keys_meet``, ``_local_date`` …) give the fragments that
  differ. Records keep their JSON as text, as in SQLite: what the engine stores and reads back is the
  same bytes on both backends; the indexed fields are stored generated columns over ``data::jsonb``.
- **The change feed never skips a late commit.** Concurrent PostgreSQL transactions may commit out
  of sequence order, so a pull reading ``seq > N`` could pass over a change whose transaction took
  N+1 but committed after N+2 was read. Every write transaction therefore first locks the clock row
  (``counters``/``seq``, ``SELECT … FOR UPDATE``), takes its sequence numbers from it and holds it
  to its commit — Replicache's row-versioning backend keeps a version row per space the same way.
  Sequence numbers are thus handed out and committed in one order: a reader whose snapshot shows the
  counter at N shows every change up to N (``tests/test_late_commit.py`` holds a transaction open
  while another server commits). The cost is one writer at a time per database, as in SQLite; group
  commit on each server still folds the pushes waiting meanwhile into one transaction.
- **Migrations** are ``sync.store.MIGRATIONS`` translated (``pg_ddl``), run under an advisory lock
  so that servers starting together migrate once.
- **Backup** is ``pg_dump`` of one snapshot, plus the statements that give a restore a new cursor
  epoch and skip ``VERSION_GAP`` versions (``backup_to``); ``restore_into`` loads it with ``psql``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import subprocess
from typing import Any, Iterable, Iterator, Sequence

import psycopg
from psycopg.rows import RowMaker

from .store import VERSION_GAP, SQLiteStore, dumps, loads

# Any 64-bit number, the same for every server: ``pg_advisory_lock`` around migrations.
MIGRATION_LOCK = 0x67726964626F6F6B   # "gridbook"


class _Row(tuple):  # type: ignore[type-arg]
    """A row readable by position and by column name, and ``dict(row)``-able, as ``sqlite3.Row``."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _rows(cursor: Any) -> RowMaker[_Row]:
    names = {c.name: i for i, c in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _Row:
        r = _Row(values)
        r._names = names
        return r
    return make


@functools.lru_cache(maxsize=4096)
def pg_sql(sql: str, with_params: bool) -> str:
    """``?`` → ``%s``, ``:name`` → ``%(name)s`` and (when parameters are passed) ``%`` → ``%%``,
    outside quoted literals and identifiers."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:   # a doubled quote inside the literal
                        j += 2
                        continue
                    break
                j += 1
            lit = sql[i:j + 1]
            out.append(lit.replace("%", "%%") if with_params else lit)
            i = j + 1
            continue
        if c == "?" and with_params:
            out.append("%s")
        elif c == ":" and with_params and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_") \
                and (i == 0 or sql[i - 1] != ":"):
            m = re.match(r":([A-Za-z_]\w*)", sql[i:])
            assert m
            out.append(f"%({m.group(1)})s")
            i += len(m.group(0))
            continue
        elif c == "%" and with_params:
            out.append("%%")
        else:
            out.append(c)
        i += 1
    return "".join(out)


class _PgConn:
    """The part of ``sqlite3.Connection`` the store uses, over a psycopg connection in autocommit
    mode (transactions are the store's own BEGIN/COMMIT, as on SQLite)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.raw = self._open()
        self._trace: Any = None

    def set_trace_callback(self, trace: Any) -> None:
        """As sqlite3's: ``trace(sql)`` for every statement run (the store's SQL, before translation)."""
        self._trace = trace

    def _open(self) -> psycopg.Connection[_Row]:
        return psycopg.connect(self.url, autocommit=True, row_factory=_rows)

    def _live(self) -> psycopg.Connection[_Row]:
        # A connection the database dropped (restarted, idle timeout) is opened again between
        # transactions; inside one, the error reaches the caller and the transaction is lost whole.
        if self.raw.closed or self.raw.broken:
            if self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not self.raw.closed:
                raise psycopg.OperationalError("the database connection was lost inside a transaction")
            self.raw = self._open()
        return self.raw

    def execute(self, sql: str, params: Any = None) -> Any:
        if self._trace is not None:
            self._trace(sql)
        cur = self._live().cursor()
        if params is None:
            cur.execute(pg_sql(sql, False))
        else:
            cur.execute(pg_sql(sql, True), _no_nul_params(params if isinstance(params, dict) else tuple(params)))
        return cur

    def executemany(self, sql: str, seq: Iterable[Any]) -> Any:
        if self._trace is not None:
            self._trace(sql)
        cur = self._live().cursor()
        cur.executemany(pg_sql(sql, True), [_no_nul_params(p) for p in seq])
        return cur

    def close(self) -> None:
        self.raw.close()


def _held(value: str) -> str:
    """A string as PostgreSQL holds it (``_no_nul_params``)."""
    return value.replace("\x00", "\ufffd")


def _no_nul_params(params: Any) -> Any:
    """U+0000 in a parameter becomes U+FFFD, as in stored data (``PostgresStore._data_text``):
    PostgreSQL's text cannot hold it and refuses the whole statement, so a hostile id or username
    with one in it was a 500 where SQLite answers "not found"."""
    values = params.values() if isinstance(params, dict) else params
    if not any(isinstance(v, str) and "\x00" in v for v in values):
        return params
    if isinstance(params, dict):
        return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in params.items()}
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in params)


_JSON_EXTRACT = re.compile(r"json_extract\((\w+), '\$\.([\w.]+)'\)")


def pg_ddl(stmt: str) -> str:
    """One statement of ``sync.store.MIGRATIONS`` as PostgreSQL says it."""
    s = _JSON_EXTRACT.sub(lambda m: f"(({m.group(1)})::jsonb #>> '{{{m.group(2).replace('.', ',')}}}')", stmt)
    s = s.replace(" VIRTUAL", " STORED").replace(") WITHOUT ROWID", ")")
    s = s.replace("id INTEGER PRIMARY KEY", "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    return re.sub(r"\bINTEGER\b", "BIGINT", s)


def pg_tool(name: str) -> str:
    """A PostgreSQL client program: on PATH, or the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    base = "/usr/lib/postgresql"
    for v in sorted(os.listdir(base) if os.path.isdir(base) else [], key=lambda x: int(x) if x.isdigit() else 0,
                    reverse=True):
        p = os.path.join(base, v, "bin", name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{name} not found: install PostgreSQL's client programs (Debian: postgresql-client)")


class PostgresStore(SQLiteStore):
    """``SQLiteStore``'s operations on one PostgreSQL connection (see the module's docstring)."""

    def _connect(self, path: str) -> Any:
        return _PgConn(path)

    # -- dialect -----------------------------------------------------------------------------
    _like = "ILIKE"
    _BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"   # one snapshot for a pull page

    @staticmethod
    def _path(path: str) -> str:
        return "{" + path.replace(".", ",") + "}"

    def _jt(self, expr: str, path: str) -> str:
        return f"(({expr})::jsonb #>> '{self._path(path)}')"

    def _jv(self, expr: str, path: str) -> str:
        return f"(({expr})::jsonb #> '{self._path(path)}')"   # jsonb: psycopg gives the Python value

    def _jtrue(self, expr: str, path: str) -> str:
        return f"coalesce((({expr})::jsonb #>> '{self._path(path)}') IN ('true', '1'), false)"

    def _json_has(self, expr: str, path: str) -> str:
        return f"coalesce((({expr})::jsonb #> '{self._path(path)}') @> jsonb_build_array(?::text), false)"

    def _in_list(self) -> str:
        return "(SELECT jsonb_array_elements_text(?::jsonb))"

    def _indexed_by(self, index: str) -> str:
        return ""

    def _unindexed(self, expr: str) -> str:
        return expr

    def _array_has(self, expr: str) -> str:
        return f"coalesce(({expr})::jsonb @> jsonb_build_array(?::text), false)"

    def _keys_meet(self, alias: str) -> str:
        # jsonb ?| text[]: written as the function, since ``?`` is a placeholder here
        return f"jsonb_exists_any(({alias}.keys)::jsonb, ARRAY(SELECT jsonb_array_elements_text(?::jsonb)))"

    def _key_held(self, keys_expr: str, key_expr: str) -> str:
        return f"jsonb_exists(({keys_expr})::jsonb, {key_expr})"

    def _local_date(self, expr: str) -> str:
        return f"to_char((({expr})::timestamptz AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM-DD')"

    def _julian(self, expr: str) -> str:
        return f"(extract(epoch FROM ({expr})::timestamptz) / 86400.0 + 2440587.5)::float8"

    @contextlib.contextmanager
    def _streaming(self, sql: str, args: list[Any]) -> Iterator[Any]:
        """A server-side cursor: psycopg's ordinary cursor would hold the whole result in memory."""
        with self.read():
            cur = self.conn._live().cursor(name="gb_stream_" + secrets.token_hex(4))
            try:
                cur.execute(pg_sql(sql, True), _no_nul_params(tuple(args)))
                yield cur.fetchmany
            finally:
                cur.close()

    def _data_text(self, data: dict[str, Any]) -> str:
        """U+0000 becomes U+FFFD: jsonb (every indexed column, every query's ``data::jsonb``) cannot
        hold it, and one such string made the whole row unwritable (a 500). Records never hold it
        (``sync.schema`` refuses control characters); only the copy of a refused request that a
        rejection conflict keeps can, and there the character was invisible anyway."""
        text = dumps(data)
        return dumps(_without_nul(data)) if "\\u0000" in text else text

    # -- idempotency: mids as the database holds them ------------------------------------------
    # A client's mid is any string; one with U+0000 is held with U+FFFD (``_no_nul_params``). The
    # log is asked and written under that form, and answers under the mid asked: without it a
    # retry of such a mid was not recognised, and its second log row broke the primary key (a 500).
    # A mid with U+0000 and the same with U+FFFD are thus one mid here.

    def logged_result(self, user_id: str, mid: str) -> dict[str, Any] | None:
        return super().logged_result(user_id, _held(mid))

    def logged_results(self, user_id: str, mids: Iterable[str]) -> dict[str, dict[str, Any]]:
        asked = {m: _held(m) for m in mids if isinstance(m, str)}
        found = super().logged_results(user_id, asked.values())
        return {m: found[h] for m, h in asked.items() if h in found}

    def log_result(self, user_id: str, mid: str, device_id: str, result: dict[str, Any], at: str) -> None:
        if self._in_tx and (user_id, _held(mid)) in self._logged:
            return   # its other spelling was pushed in the same transaction, and is logged
        super().log_result(user_id, _held(mid), device_id, result, at)

    # -- schema ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _migrating(self) -> Iterator[None]:
        """Under an advisory lock: servers that start together apply each migration once."""
        self.conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
        try:
            yield
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))

    @contextlib.contextmanager
    def _migration_transaction(self) -> Iterator[None]:
        # a plain transaction: the clock row that ``transaction()`` locks is made by the first one
        self.conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _ddl(self, stmt: str) -> str:
        return pg_ddl(stmt)

    # -- transactions ------------------------------------------------------------------------
    def _begin_write(self) -> None:
        """Begin, and lock the clock row first: one writer at a time, sequence numbers committed in
        order (the module's docstring). The counter read here is the block's start."""
        self.conn.execute("BEGIN")
        try:
            row = self.conn.execute("SELECT value FROM counters WHERE name = 'seq' FOR UPDATE").fetchone()
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self._seq = self._seq_written = int(row[0])

    def next_seq(self) -> int:
        if not self._in_tx:
            # Outside a transaction the number would be committed before the change that uses it.
            raise RuntimeError("next_seq outside a write transaction")
        return super().next_seq()

    def checkpoint(self) -> None:
        """Nothing to fold: PostgreSQL's write-ahead log is its own."""

    # -- backup and restore ------------------------------------------------------------------
    def backup_to(self, dest: str) -> None:
        """``pg_dump`` (plain SQL) of one snapshot, ending with the statements that give the restored
        database a new cursor epoch and skip ``VERSION_GAP`` versions (as ``SQLiteStore.backup_to``)."""
        if os.path.exists(dest):
            raise FileExistsError(dest)
        snap = psycopg.connect(self.path, autocommit=False)
        try:
            snap.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            (snapshot,) = snap.execute("SELECT pg_export_snapshot()").fetchone()  # type: ignore[misc]
            (head,) = snap.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()  # type: ignore[misc]
            row = snap.execute("SELECT value FROM server_meta WHERE key = 'lost_versions'").fetchone()
            lost = [*loads(row[0] if row else "[]"), [int(head), int(head) + VERSION_GAP]]
            partial = dest + ".partial"
            with open(partial, "wb") as out:
                subprocess.run([pg_tool("pg_dump"), "--snapshot", snapshot, "--format", "plain", "--no-owner",
                                "--no-privileges", "--dbname", self.path], stdout=out, check=True)
                out.write((
                    "\n-- Gridbook: a restore is a new timeline (sync/store_pg.py, backup_to)\n"
                    f"UPDATE public.server_meta SET value = '{secrets.token_hex(8)}' WHERE key = 'epoch';\n"
                    f"UPDATE public.counters SET value = {int(head) + VERSION_GAP} WHERE name = 'seq';\n"
                    f"INSERT INTO public.server_meta VALUES ('lost_versions', '{dumps(lost)}') "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value;\n").encode())
            os.replace(partial, dest)
        finally:
            snap.close()


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def restore_into(url: str, dump: str) -> None:
    """Load a backup (``PostgresStore.backup_to``) into an empty database, all or nothing."""
    with psycopg.connect(url, autocommit=True) as c:
        if c.execute("SELECT to_regclass('public.migrations')").fetchone()[0] is not None:  # type: ignore[index]
            raise FileExistsError(f"{url} already holds a Gridbook database: restore into a new, empty one")
    subprocess.run([pg_tool("psql"), "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--single-transaction",
                    "--dbname", url, "--file", dump], check=True, stdout=subprocess.DEVNULL)


def database_exists(url: str) -> bool:
    """Whether the database holds Gridbook's tables (``run`` seeds the demo into one that does not)."""
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute("SELECT to_regclass('public.migrations')").fetchone()[0] is not None  # type: ignore[index]


__all__ = ["PostgresStore", "database_exists", "pg_ddl", "pg_sql", "pg_tool", "restore_into"]
