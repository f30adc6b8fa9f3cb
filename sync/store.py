"""The only SQL of the engine, behind a narrow interface (``SQLiteStore``), and its migrations.

Every synced collection is a table of the same shape::

    id, version, deleted, data (JSON), meta (JSON: per-field version/at/author/origin),
    keys (JSON: the scope keys the record is visible under), created/updated at/by

plus virtual generated columns over ``data`` for the fields that are queried (household_id,
status …), each indexed. The change feed is one table ``feed(key, collection, id, seq)``
holding, per scope key and record, the sequence number of the last change that matters to
that key; ``(key, seq)`` is indexed, so a pull page is a handful of index range scans whose
cost does not grow with the database (see ``tests/test_pull_plan.py``).

``SQLiteStore`` implements ``sync.storage.Store``; a PostgreSQL store would implement the same
methods. Nothing outside this module runs SQL: the engine and every reader (console, dashboard,
CLI, proxy reports) call named methods (docs/storage.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar, Union

import msgspec

from . import workflow
from .schema import COLLECTIONS
from .storage import (AuditEntry, DashboardMatter, Feedback, IdData, MatterFilter, MatterRow, MatterSort,
                      TaggedHousehold)

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def dumps(value: Any) -> str:
    return _enc.encode(value).decode()


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    return _dec.decode(text)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """Server times: UTC, microseconds, explicit offset, so that strings sort like times."""
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


T = TypeVar("T")


class _Grouped:
    """One caller's work waiting in a group commit, and its outcome."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def _contains(text: str) -> str:
    """A LIKE pattern (``ESCAPE '\\'``) matching strings that contain ``text``."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# SQLite's modifier from UTC to China Standard Time: ``date(x, LOCAL_SHIFT)`` is x's local date.
LOCAL_SHIFT = "+8 hours"


_UPSERT = ("INSERT INTO {} (id, version, deleted, data, meta, keys, created_at, updated_at, created_by, updated_by) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
           "deleted = excluded.deleted, data = excluded.data, meta = excluded.meta, keys = excluded.keys, "
           "updated_at = excluded.updated_at, updated_by = excluded.updated_by")
# Statements that read no table: the record rows a transaction buffered need not be written first.
_NO_FLUSH = ("SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "BEGIN")


class _Conn:
    """The store's connection: before any statement that may read a table, the record rows the
    write transaction buffered are written (``SQLiteStore.put``), so every query sees them."""

    __slots__ = ("raw", "store")

    def __init__(self, raw: Any, store: "SQLiteStore") -> None:
        self.raw = raw
        self.store = store

    def execute(self, sql: str, *params: Any) -> Any:
        if (self.store._put_buf or self.store._lazy) and not sql.startswith(_NO_FLUSH):
            self.store._before_statement()
        return self.raw.execute(sql, *params)

    def executemany(self, sql: str, rows: Any) -> Any:
        if self.store._put_buf or self.store._lazy:
            self.store._before_statement()
        return self.raw.executemany(sql, rows)

    def backup(self, target: Any, *args: Any, **kw: Any) -> Any:
        """sqlite3's online backup, into a connection or a store's connection."""
        return self.raw.backup(target.raw if isinstance(target, _Conn) else target, *args, **kw)

    def __getattr__(self, name: str) -> Any:   # set_trace_callback, close …
        return getattr(self.raw, name)


class StoredRecord:
    """A record as stored: its fields (``data``), per-field merge metadata (``meta``), scope keys and
    server fields. ``meta`` may be given as the stored JSON text, decoded when first used: a pull
    page never needs it, and decoding it was a third of a page's JSON work."""

    __slots__ = ("collection", "id", "version", "deleted", "data", "_meta", "keys", "created_at", "updated_at",
                 "created_by", "updated_by")

    def __init__(self, collection: str, id: str, version: int, deleted: bool, data: dict[str, Any],
                 meta: dict[str, Any] | str | bytes, keys: list[str], created_at: str, updated_at: str,
                 created_by: str | None, updated_by: str | None) -> None:
        self.collection, self.id, self.version, self.deleted, self.data = collection, id, version, deleted, data
        self._meta = meta
        self.keys, self.created_at, self.updated_at = keys, created_at, updated_at
        self.created_by, self.updated_by = created_by, updated_by

    @property
    def meta(self) -> dict[str, Any]:
        if isinstance(self._meta, (str, bytes)):
            self._meta = loads(self._meta)
        assert isinstance(self._meta, dict)
        return self._meta

    @meta.setter
    def meta(self, value: dict[str, Any]) -> None:
        self._meta = value

    def __repr__(self) -> str:
        return f"StoredRecord({self.collection!r}, {self.id!r}, version={self.version}, deleted={self.deleted})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredRecord):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in
                   ("collection", "id", "version", "deleted", "data", "meta", "keys", "created_at", "updated_at",
                    "created_by", "updated_by"))

    __hash__ = None  # type: ignore[assignment]   # mutable, as the dataclass was

    def full(self) -> dict[str, Any]:
        """The record as pull sends it in ``data``: fields plus server fields."""
        out = dict(self.data)
        out.update(id=self.id, version=self.version, deleted=self.deleted, created_at=self.created_at,
                   updated_at=self.updated_at, created_by=self.created_by, updated_by=self.updated_by)
        return out


# Generated, indexed columns per collection: (column, json path).
INDEXED: dict[str, tuple[tuple[str, str], ...]] = {
    "areas": (("parent_id", "$.parent_id"),),
    "users": (("username", "$.username"),),
    "categories": (("code", "$.code"),),
    "households": (("grid_id", "$.grid_id"),),
    "residents": (("household_id", "$.household_id"),),
    "visits": (("household_id", "$.household_id"), ("visited_at", "$.visited_at")),
    "matters": (("household_id", "$.household_id"), ("assignee_id", "$.assignee_id"), ("status", "$.status")),
    "matter_events": (("matter_id", "$.matter_id"),),
    "attachments": (("record_id", "$.record_id"),),
    "conflicts": (("author_id", "$.author_id"), ("status", "$.status")),
}


# The fields household search reads, and an event's kind (migration 0007): columns computed from ``data``.
SEARCHED: dict[str, tuple[str, ...]] = {"households": ("head_name", "address", "phone", "tags"),
                                        "residents": ("name", "phone"), "matter_events": ("kind",)}


# Computed columns of matters (migration 0007), each what the console's queries used to compute from
# ``data``: ``held_to`` is ``workflow.held_to`` (the effective deadline, else the one set), ``done_at``
# the resolution time the dashboard counts (resolved, else closed); ``supervised`` is the JSON value
# as text ('1'/'0' on SQLite, 'true'/'false' on PostgreSQL).
MATTER_COLUMNS: dict[str, str] = {
    "raised_at": "json_extract(data, '$.raised_at')",
    "done_at": "coalesce(json_extract(data, '$.resolved_at'), json_extract(data, '$.closed_at'))",
    "held_to": "coalesce(json_extract(data, '$.effective_deadline'), json_extract(data, '$.deadline'))",
    "handling_mode": "json_extract(data, '$.handling_mode')",
    "supervised": "json_extract(data, '$.supervised')",
    "deadline": "json_extract(data, '$.deadline')",
    "category": "json_extract(data, '$.category')",
    "line": "json_extract(data, '$.line')",
    "channel": "json_extract(data, '$.channel')",
}


def _collection_ddl(name: str) -> list[str]:
    cols = "".join(f",\n  {c} TEXT GENERATED ALWAYS AS (json_extract(data, '{p}')) VIRTUAL"
                   for c, p in INDEXED.get(name, ()))
    stmts = [f"""CREATE TABLE {name} (
  id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  data TEXT NOT NULL,
  meta TEXT NOT NULL,
  keys TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  created_by TEXT,
  updated_by TEXT{cols}
)"""]
    for c, _ in INDEXED.get(name, ()):
        stmts.append(f"CREATE INDEX {name}_{c} ON {name}({c})")
    return stmts


def _number_matters(store: "SQLiteStore") -> None:
    """Migration 0006: a work-order number (``number``, YYYY-NNNNNN) for every matter made before the
    server gave one at creation, in the order they were created, each year's serial from 1; the
    ``counters`` row ``matter_number:YYYY`` then holds the last serial given, so the next matter
    goes on from it. The data changes without a new version (a phone sees the number with the
    matter's next change; the console reads the server)."""
    rows = store.conn.execute("SELECT id, created_at FROM matters ORDER BY created_at, id").fetchall()
    last: dict[str, int] = {}
    numbers: list[tuple[str, str]] = []
    for rid, created in rows:
        year = matter_number_year(created)
        last[year] = last.get(year, 0) + 1
        numbers.append((rid, format_matter_number(year, last[year])))
    for i in range(0, len(numbers), 500):
        chunk = dict(numbers[i:i + 500])
        found = store.conn.execute(f"SELECT id, data FROM matters WHERE id IN {store._in_list()}",
                                   (dumps(list(chunk)),)).fetchall()
        updates = []
        for rid, text in found:
            data = loads(text)
            data["number"] = chunk[rid]
            updates.append((store._data_text(data), rid))
        store.conn.executemany("UPDATE matters SET data = ? WHERE id = ?", updates)
    for year, value in last.items():
        store.conn.execute("INSERT INTO counters (name, value) VALUES (?, ?)", (MATTER_NUMBER_COUNTER + year, value))


MATTER_NUMBER_COUNTER = "matter_number:"


def matter_number_year(stamp: str) -> str:
    """The year (China Standard Time) of a stored time: the year part of a work-order number."""
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp[:4]
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone(timedelta(hours=8)))
    return f"{dt.year:04d}"


def format_matter_number(year: str, serial: int) -> str:
    """``2026-000123``: the year and its serial (six digits, more when a year has a million)."""
    return f"{year}-{serial:06d}"


MigrationStep = Union[str, Callable[["SQLiteStore"], None]]
"""A statement, or a function run with the store inside the migration's transaction (for a step that
rewrites records: written once for both backends, through the store's own dialect)."""

MIGRATIONS: list[tuple[str, list[MigrationStep]]] = [
    ("0001 collections, feed, idempotency, accounts, blobs", [
        *[s for name in ("areas", "users", "categories", "households", "residents", "visits", "matters",
                         "matter_events", "attachments", "conflicts") for s in _collection_ddl(name)],
        "CREATE UNIQUE INDEX users_username_unique ON users(username)",
        """CREATE TABLE feed (
  key TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (key, collection, id)) WITHOUT ROWID""",
        "CREATE INDEX feed_key_seq ON feed(key, seq)",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO counters VALUES ('seq', 0)",
        "CREATE TABLE server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        """CREATE TABLE mutation_log (
  user_id TEXT NOT NULL, mid TEXT NOT NULL, device_id TEXT NOT NULL, result TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (user_id, mid)) WITHOUT ROWID""",
        "CREATE INDEX mutation_log_created ON mutation_log(created_at)",
        """CREATE TABLE credentials (
  user_id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        """CREATE TABLE devices (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
  lineage_id TEXT NOT NULL, created_at TEXT NOT NULL, last_seen_at TEXT, last_push_at TEXT,
  last_pull_at TEXT, revoked_at TEXT, revoked_by TEXT, outbox_depth INTEGER, app_version TEXT)""",
        "CREATE INDEX devices_user ON devices(user_id)",
        """CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY, length INTEGER NOT NULL, complete INTEGER NOT NULL DEFAULT 0,
  uploaded_by TEXT NOT NULL, created_at TEXT NOT NULL, completed_at TEXT)""",
        """CREATE TABLE blob_refs (
  sha256 TEXT NOT NULL, collection TEXT NOT NULL, record_id TEXT NOT NULL,
  PRIMARY KEY (sha256, collection, record_id)) WITHOUT ROWID""",
        "CREATE INDEX blob_refs_record ON blob_refs(collection, record_id)",
        """CREATE TABLE audit (
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, user_id TEXT, action TEXT NOT NULL,
  collection TEXT, record_id TEXT, details TEXT)""",
        "CREATE INDEX audit_at ON audit(at)",
    ]),
    # Issue 12, finding 5: a hash is a name, not a key. Unfinished uploads become one per user
    # (``blob_uploads``, moved out of ``blobs``: an upload begun before keeps its file, named by the
    # hash, and its uploader); users who uploaded every byte are ``blob_holders``; a citation keeps
    # its author (``cited_by``) and counts for readers only when ``proven``. Citations of blobs
    # complete at migration keep granting what they granted; their author is the record's creator
    # (the photos' last writer for matters).
    ("0002 blob uploads bound to their uploader, citations to their author", [
        """CREATE TABLE blob_uploads (
  sha256 TEXT NOT NULL, user_id TEXT NOT NULL, length INTEGER NOT NULL, partial TEXT NOT NULL,
  started_at TEXT NOT NULL, PRIMARY KEY (sha256, user_id)) WITHOUT ROWID""",
        "CREATE INDEX blob_uploads_user ON blob_uploads(user_id)",
        """CREATE TABLE blob_holders (
  sha256 TEXT NOT NULL, user_id TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (sha256, user_id)) WITHOUT ROWID""",
        "INSERT INTO blob_uploads SELECT sha256, uploaded_by, length, sha256, created_at FROM blobs WHERE complete = 0",
        "INSERT INTO blob_holders SELECT sha256, uploaded_by, coalesce(completed_at, created_at) FROM blobs "
        "WHERE complete = 1",
        "ALTER TABLE blob_refs ADD COLUMN cited_by TEXT",
        "ALTER TABLE blob_refs ADD COLUMN proven INTEGER NOT NULL DEFAULT 0",
        *[f"UPDATE blob_refs SET cited_by = (SELECT created_by FROM {c} WHERE id = record_id) WHERE collection = '{c}'"
          for c in ("visits", "matter_events", "attachments")],
        "UPDATE blob_refs SET cited_by = (SELECT coalesce(json_extract(meta, '$.photos.u'), created_by) FROM matters "
        "WHERE id = record_id) WHERE collection = 'matters'",
        "UPDATE blob_refs SET proven = 1 WHERE sha256 IN (SELECT sha256 FROM blobs WHERE complete = 1)",
    ]),
    # Issue 13, item 5: blobs on shared storage. Several servers may share one database and one
    # bucket, so what an upload holds is the database's to say, not a file on one server's disk:
    # ``received`` (the upload offset) and ``touched_at`` (its last chunk, for expiry), and a row per
    # chunk stored (``blob_chunks``: where it starts, its length, the name the byte storage gave it).
    # Any server can then take the next chunk or finish the upload. Uploads begun before keep NULL
    # until a server starts and reads their partial file (``BlobStore.recover``).
    ("0003 blob upload offsets and chunks in the database", [
        "ALTER TABLE blob_uploads ADD COLUMN received INTEGER",
        "ALTER TABLE blob_uploads ADD COLUMN touched_at TEXT",
        """CREATE TABLE blob_chunks (
  sha256 TEXT NOT NULL, user_id TEXT NOT NULL, start INTEGER NOT NULL, length INTEGER NOT NULL, name TEXT NOT NULL,
  PRIMARY KEY (sha256, user_id, start)) WITHOUT ROWID""",
    ]),
    # Issue 13, item 3: several worker processes (and several servers) on one database enforce one
    # login limit, so its counters live here, not in each process's memory (``server/ratelimit.py``).
    # Times are integer milliseconds since the Unix epoch (wall clock: shared between machines).
    # ``login_failures``: failures of a username from an address, and the last one's time.
    # ``login_address_failures``: the most recent failures from an address, whatever the username,
    # one row per slot of a ring of ``login_max_failures_ip`` slots (the oldest slot is reused).
    ("0004 login limiter counters in the database", [
        """CREATE TABLE login_failures (
  username TEXT NOT NULL, address TEXT NOT NULL, failures INTEGER NOT NULL, last_ms BIGINT NOT NULL,
  PRIMARY KEY (username, address))""",
        "CREATE INDEX login_failures_last ON login_failures(last_ms)",
        """CREATE TABLE login_address_failures (
  address TEXT NOT NULL, slot INTEGER NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (address, slot))""",
        "CREATE INDEX login_address_failures_at ON login_address_failures(at_ms)",
    ]),
    # Issue 14, onboarding: users imported from a county's .xlsx get a one-time initial password
    # (an admin's reset gives one too) that must be replaced at first sign-in, on the console and
    # on the phone alike. The flag lives with the hash, never in the synced user record.
    ("0005 one-time initial passwords", [
        "ALTER TABLE credentials ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0",
    ]),
    # Issue 14: a work-order number on every matter (``number``), given by the server at creation
    # (``SQLiteStore.next_counter`` in the push's transaction); the matters made before are numbered here.
    ("0006 matter work-order numbers", [_number_matters]),
    # Issue 14: the console at county scale (430,000 households, 1.1 million residents; bench/console.py).
    # Searching by name read every household's and resident's whole row (their JSON, notes and all):
    # the fields searched become columns computed from the data, and indexes that hold them (with the
    # id) are scanned instead, a fraction of the bytes; the rows are read for the hits only.
    # ``households_grid_live`` answers "the live households of these grids" (and their tags, for the
    # dashboard's key populations) from the index alone.
    ("0007 county-scale search and scope indexes", [
        *[f"ALTER TABLE {t} ADD COLUMN {c} TEXT GENERATED ALWAYS AS (json_extract(data, '$.{c}')) VIRTUAL"
          for t, cs in SEARCHED.items() for c in cs],
        "CREATE INDEX households_search ON households(head_name, address, phone, deleted, id)",
        "CREATE INDEX residents_search ON residents(name, phone, deleted, household_id)",
        "CREATE INDEX households_grid_live ON households(grid_id, deleted, id, tags)",
        # The dashboard's matters (every figure of the county or a town counts them) and the matters
        # list's filters and sorts from one index holding what they read: the deadline a matter is
        # held to (``workflow.held_to``), when it was raised and resolved, its handling mode,
        # supervision, category, line and channel, and its scope keys. The list reads the rows of
        # its page only.
        *[f"ALTER TABLE matters ADD COLUMN {c} TEXT GENERATED ALWAYS AS ({expr}) VIRTUAL"
          for c, expr in MATTER_COLUMNS.items()],
        "CREATE INDEX matters_dashboard ON matters(household_id, deleted, status, raised_at, done_at, held_to, "
        "handling_mode, supervised, deadline, category, line, channel, assignee_id, updated_at, id, keys)",
        "CREATE INDEX visits_visited_live ON visits(visited_at, deleted, household_id)",
        # the feedback (回访) and delegation (委托) events of the dashboard's resolved matters, without
        # reading every other event of theirs
        "CREATE INDEX matter_events_kind ON matter_events(matter_id, kind, deleted)",
    ]),
]


# Versions a backup's copy skips (see ``backup_to``): far more than a server issues between two
# backups, far fewer than the 2**53 a phone's JavaScript counts exactly.
VERSION_GAP = 1 << 32


class SQLiteStore:
    """One SQLite connection with the operations the engine needs.

    A server keeps one writer store (pushes are serialised by ``write_lock``: SQLite has one
    writer anyway) and a reader store per thread.
    """

    def __init__(self, path: str, *, readonly: bool = False, writer: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self.is_writer = writer
        self._put_buf: list[tuple[str, tuple[Any, ...]]] = []
        self._lazy = False
        self.conn = _Conn(self._connect(path), self)
        self.write_lock = threading.RLock()
        self._in_tx = False
        self._tx_thread: int | None = None
        self._group = threading.Condition()
        self._queue: list[_Grouped] = []
        self._leading = False
        self._tx_reset()

    def _connect(self, path: str) -> Any:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        if path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a push acknowledged to a phone survives power loss, not only a process crash.
        conn.execute("PRAGMA synchronous = FULL")
        # The write-ahead log is folded into the database every 64 MiB instead of every 4 MiB: a push
        # of 500 records writes a few MiB of pages, and the fold (with its fsync) ran in every other
        # commit. The server's writer keeps 64 MiB of pages (2 MiB by default): the indexes a push
        # inserts into (feed, household_id …) stay in memory between pushes. Readers keep the default.
        conn.execute("PRAGMA wal_autocheckpoint = 16384")
        if self.is_writer:
            conn.execute("PRAGMA cache_size = -65536")
        return conn

    def _tx_reset(self) -> None:
        """Forget what one write transaction keeps in memory (the batch write path, issue 13).

        Inside a transaction the store reserves sequence numbers in memory and writes the counter
        once at commit, buffers change-feed rows and idempotency-log rows and writes each kind with
        one ``executemany`` at commit, and reads each record from the database at most once (a read
        cache that every write of the transaction updates). A savepoint's rollback drops what its
        mutation buffered and the read cache. None of it outlives the transaction.
        """
        self._seq: int | None = None
        self._seq_written: int | None = None
        self._put_buf = []
        self._savepoints: list[list[Any]] = []   # open savepoints: [name, put mark, in the database yet]
        self._lazy = False                       # one of them is not in the database yet
        self._feed_buf: list[tuple[str, str, str, int]] = []
        self._log_buf: list[tuple[str, str, str, str, str]] = []
        self._logged: dict[tuple[str, str], str] = {}
        self._rows: dict[tuple[str, str], tuple[Any, ...] | None] = {}
        self._meta: dict[str, str | None] = {}

    def close(self) -> None:
        self.conn.close()

    # -- dialect -----------------------------------------------------------------------------
    # The SQL fragments that differ between SQLite and PostgreSQL, so that every query is written
    # once (``sync.store_pg.PostgresStore`` overrides these). ``path`` is a dotted JSON path.
    _like = "LIKE"   # case-insensitive for ASCII in SQLite; PostgreSQL's equivalent is ILIKE

    def _data_text(self, data: dict[str, Any]) -> str:
        """A record's data as stored (PostgreSQL: see its override)."""
        return dumps(data)

    def _jt(self, expr: str, path: str) -> str:
        """A JSON field of ``expr`` as SQL text (strings; NULL when missing)."""
        return f"json_extract({expr}, '$.{path}')"

    def _jv(self, expr: str, path: str) -> str:
        """A JSON field of ``expr`` as the driver returns a scalar: numbers as numbers, true as 1 or True."""
        return f"json_extract({expr}, '$.{path}')"

    def _jtrue(self, expr: str, path: str) -> str:
        """Condition: the JSON field is true (or 1)."""
        return f"coalesce(json_extract({expr}, '$.{path}'), 0) = 1"

    def _json_has(self, expr: str, path: str) -> str:
        """Condition: the JSON array at ``path`` holds the string given as the next parameter."""
        return f"EXISTS (SELECT 1 FROM json_each({expr}, '$.{path}') WHERE value = ?)"

    def _unindexed(self, expr: str) -> str:
        """``expr``, its index not to be used for a condition on it (SQLite's unary plus): "the grid
        is one of these" is checked on the row found otherwise, not by probing every grid's entries."""
        return f"+{expr}"

    def _array_has(self, expr: str) -> str:
        """Condition: ``expr``, a JSON array as text (a column computed from the data), holds the string
        given as the next parameter (``_json_has`` on the column instead of the row's data)."""
        return f"EXISTS (SELECT 1 FROM json_each({expr}) WHERE value = ?)"

    def _in_list(self) -> str:
        """``(…)`` for ``x IN …``: the strings of one parameter holding a JSON array (any length)."""
        return "(SELECT value FROM json_each(?))"

    def _keys_meet(self, alias: str) -> str:
        """Condition: the record ``alias`` is visible under one of the keys given as one JSON array
        parameter. The console's lists use it (through the query methods' ``keys``) so that "in
        scope" is the engine's own rule (``scope.visible``): a record's stored keys meet the user's."""
        return f"EXISTS (SELECT 1 FROM json_each({alias}.keys) WHERE value IN (SELECT value FROM json_each(?)))"

    def _key_held(self, keys_expr: str, key_expr: str) -> str:
        """Condition: the JSON array of keys ``keys_expr`` holds ``key_expr``."""
        return f"EXISTS (SELECT 1 FROM json_each({keys_expr}) k WHERE k.value = {key_expr})"

    def _seen(self, keys: Iterable[str] | None) -> tuple[str, tuple[str, ...]]:
        """The condition "the matter ``m`` is visible under ``keys``" and its parameter; nothing for None."""
        if keys is None:
            return "", ()
        return f" AND {self._keys_meet('m')}", (dumps(sorted(keys)),)

    def _local_date(self, expr: str) -> str:
        """The local (China Standard Time) date, 'YYYY-MM-DD', of a stored time with an offset."""
        return f"date({expr}, '{LOCAL_SHIFT}')"

    def _julian(self, expr: str) -> str:
        """A stored time (or a parameter, ``?``) as a Julian day number, to compare times that carry offsets."""
        return f"julianday({expr})"

    # -- schema ------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply the migrations not yet applied, each in its own transaction, and make the server's
        cursor epoch, cursor secret and retention horizon on a new database. Returns their names."""
        with self._migrating():
            self.conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
            applied = []
            for name, stmts in MIGRATIONS:
                if name in done:
                    continue
                with self._migration_transaction():
                    for stmt in stmts:
                        if callable(stmt):
                            stmt(self)
                        else:
                            self.conn.execute(self._ddl(stmt))
                    self.conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, iso(utcnow())))
                applied.append(name)
            with self.transaction():
                for key, value in (("epoch", secrets.token_hex(8)), ("secret", secrets.token_hex(32)), ("horizon", "0")):
                    self.conn.execute("INSERT INTO server_meta VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
            return applied

    # What migrating differs in between backends (``sync.store_pg`` overrides them): a lock that
    # makes servers starting together migrate once (SQLite's write lock is enough), the transaction
    # of one migration, and the statements' dialect.
    def _migrating(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _migration_transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.transaction()

    def _ddl(self, stmt: str) -> str:
        return stmt

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE): all of it, or none of it."""
        with self.write_lock:  # re-entrant: a transaction inside a transaction joins it
            if self._in_tx:
                yield
                return
            self._tx_reset()
            self._begin_write()
            self._in_tx = True
            self._tx_thread = threading.get_ident()
            try:
                yield
                self._flush()
            except BaseException:
                self._in_tx = False
                self._tx_thread = None
                self._tx_reset()
                self.conn.execute("ROLLBACK")
                raise
            self._in_tx = False
            self._tx_thread = None
            self._tx_reset()
            self.conn.execute("COMMIT")

    def _begin_write(self) -> None:
        """Begin a write transaction holding the database's write lock (SQLite has one writer)."""
        self.conn.execute("BEGIN IMMEDIATE")

    def grouped(self, work: Callable[[], T]) -> T:
        """Run ``work`` (one push) in a write transaction shared with the pushes waiting meanwhile.

        Group commit: the first caller leads; whoever arrives while it writes queues, and the next
        leader runs the whole queue in one transaction, each ``work`` inside a savepoint of its own
        (an exception undoes that push alone and is raised to its caller), with one commit — one
        fsync of the WAL — for all of them. A caller returns only after the commit that holds its
        work. ``work`` must not wait for another thread's write.
        """
        if self._in_tx and self._tx_thread == threading.get_ident():
            return work()             # already inside this thread's transaction: join it
        item: _Grouped = _Grouped(work)
        with self._group:
            self._queue.append(item)
            while not item.done and self._leading:
                self._group.wait()
            if not item.done:
                self._leading = True
                batch, self._queue = self._queue, []
        if not item.done:
            try:
                self._run_group(batch)
            finally:
                with self._group:
                    self._leading = False
                    self._group.notify_all()
        result: T = item.outcome()
        return result

    def _run_group(self, batch: list["_Grouped"]) -> None:
        try:
            with self.transaction():
                for it in batch:
                    try:
                        with self.savepoint():
                            it.value = it.work()
                    except Exception as e:   # this push alone; the others go on
                        it.error = e
        except BaseException as e:        # the commit itself failed: nothing of the group holds
            for it in batch:
                if it.error is None:
                    it.error = e
        for it in batch:
            it.done = True

    def _write_puts(self, puts: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Record rows: one ``executemany`` per collection, in the order put (a later row of the same
        record wins)."""
        by_coll: dict[str, list[tuple[Any, ...]]] = {}
        for coll, row in puts:
            by_coll.setdefault(coll, []).append(row)
        for coll, rows in by_coll.items():
            self.conn.raw.executemany(_UPSERT.format(coll), rows)

    def _before_statement(self) -> None:
        """Before a statement reaches the database: open the savepoints not opened yet and write the
        buffered record rows, each row inside the savepoints it was put in.

        Savepoints are lazy: a mutation whose writes are all buffered (a new visit: its record, feed
        and log rows) needs none in the database, since undoing it is dropping its rows from the
        buffers. Only when a statement is about to run inside one is it opened — after the rows put
        before it are written, so that a rollback to it undoes exactly what was done inside it."""
        done = 0
        for sp in self._savepoints:
            if not sp[2]:
                self._write_puts(self._put_buf[done:sp[1]])
                done = max(done, sp[1])
                self.conn.raw.execute(f"SAVEPOINT {sp[0]}")
                sp[2] = True
        self._write_puts(self._put_buf[done:])
        self._put_buf = []
        for sp in self._savepoints:
            sp[1] = 0          # what is buffered from now on was put inside every open savepoint
        self._lazy = False

    def _flush(self) -> None:
        """Write what the transaction buffered: the record rows, the feed rows, the log rows, the counter."""
        self._before_statement()
        if self._feed_buf:
            self.conn.executemany(
                "INSERT INTO feed (key, collection, id, seq) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key, collection, id) DO UPDATE SET seq = excluded.seq", self._feed_buf)
            self._feed_buf = []
        if self._log_buf:
            self.conn.executemany("INSERT INTO mutation_log VALUES (?, ?, ?, ?, ?)", self._log_buf)
            self._log_buf = []
        if self._seq is not None and self._seq != self._seq_written:
            self.conn.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (self._seq,))
            self._seq_written = self._seq

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """A consistent read snapshot for a multi-statement read (one pull page)."""
        if self._in_tx:
            yield
            return
        self.conn.execute(self._BEGIN_READ)
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    _BEGIN_READ = "BEGIN"   # a read transaction is a snapshot in SQLite's WAL mode

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo one mutation's partial writes when it is rejected, keeping the rest of the batch."""
        name = "m" + secrets.token_hex(4)
        feed_mark, log_mark = len(self._feed_buf), len(self._log_buf)
        sp: list[Any] = [name, len(self._put_buf), False]   # opened in the database when needed
        self._savepoints.append(sp)
        self._lazy = True
        try:
            yield
        except BaseException:
            self._savepoints.pop()
            if sp[2]:
                self.conn.raw.execute(f"ROLLBACK TO {name}")
                self.conn.raw.execute(f"RELEASE {name}")
            # what the undone mutation buffered goes too; its sequence numbers stay used (a gap)
            del self._put_buf[sp[1]:]
            del self._feed_buf[feed_mark:]
            del self._log_buf[log_mark:]
            self._rows.clear()
            self._meta.clear()
            self._lazy = any(not x[2] for x in self._savepoints)
            raise
        self._savepoints.pop()
        if sp[2]:
            self.conn.raw.execute(f"RELEASE {name}")
        self._lazy = any(not x[2] for x in self._savepoints)

    # -- counters and server metadata ---------------------------------------------------------
    def next_seq(self) -> int:
        """The next sequence number (= version). Inside a transaction a block is kept in memory and
        the counter written once at commit: the writer holds the database's write lock meanwhile."""
        if self._in_tx:
            if self._seq is None:
                self._seq = self._seq_written = int(
                    self.conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0])
            self._seq += 1
            return self._seq
        row = self.conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value").fetchone()
        return int(row[0])

    def next_counter(self, name: str) -> int:
        """The next value (from 1) of the counter ``name`` in ``counters``, inside the write
        transaction: a mutation rolled back gives its value back. On PostgreSQL the transaction
        holds the clock row's lock, so two servers never take the same value."""
        assert self._in_tx and name != "seq"
        row = self.conn.execute("INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) "
                                "DO UPDATE SET value = counters.value + 1 RETURNING value", (name,)).fetchone()
        return int(row[0])

    def current_seq(self) -> int:
        if self._in_tx and self._seq is not None:
            return self._seq
        return int(self.conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        if self._in_tx and key in self._meta:
            return self._meta[key]
        row = self.conn.execute("SELECT value FROM server_meta WHERE key = ?", (key,)).fetchone()
        value = row[0] if row else None
        if self._in_tx:
            self._meta[key] = value
        return value

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO server_meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          (key, value))
        if self._in_tx:
            self._meta[key] = value

    # -- records -----------------------------------------------------------------------------
    @staticmethod
    def _row(coll: str, r: Any) -> StoredRecord:
        # (id, version, deleted, data, meta, keys, created_at, updated_at, created_by, updated_by)
        return StoredRecord(coll, r[0], r[1], bool(r[2]), loads(r[3]), r[4], loads(r[5]), r[6], r[7], r[8], r[9])

    def get(self, coll: str, rid: str) -> StoredRecord | None:
        assert coll in COLLECTIONS
        if self._in_tx and (coll, rid) in self._rows:
            row = self._rows[(coll, rid)]
            return self._row(coll, row) if row is not None else None
        r = self.conn.execute(f"SELECT id, version, deleted, data, meta, keys, created_at, updated_at, created_by, "
                              f"updated_by FROM {coll} WHERE id = ?", (rid,)).fetchone()
        if self._in_tx:
            self._rows[(coll, rid)] = tuple(r) if r else None
        return self._row(coll, r) if r else None

    def get_many(self, coll: str, ids: Iterable[str]) -> dict[str, StoredRecord]:
        assert coll in COLLECTIONS
        ids = list(ids)
        out: dict[str, StoredRecord] = {}
        if self._in_tx:
            missing = []
            for rid in ids:
                if (coll, rid) in self._rows:
                    row = self._rows[(coll, rid)]
                    if row is not None:
                        out[rid] = self._row(coll, row)
                else:
                    missing.append(rid)
            ids = missing
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = ",".join("?" * len(chunk))
            for r in self.conn.execute(f"SELECT id, version, deleted, data, meta, keys, created_at, updated_at, "
                                       f"created_by, updated_by FROM {coll} WHERE id IN ({q})", chunk):
                out[r[0]] = self._row(coll, r)
                if self._in_tx:
                    self._rows[(coll, r[0])] = tuple(r)
        return out

    def prefetch(self, coll: str, ids: Iterable[str]) -> None:
        """Read records a batch will need in one query (ids that do not exist are remembered too)."""
        if not self._in_tx:
            return
        wanted = [rid for rid in dict.fromkeys(ids) if isinstance(rid, str) and (coll, rid) not in self._rows]
        found = self.get_many(coll, wanted)
        for rid in wanted:
            if rid not in found:
                self._rows[(coll, rid)] = None

    def put(self, rec: StoredRecord, old_keys: Iterable[str], seq: int) -> None:
        """Write a record at version ``seq`` and mark it changed under its old and new keys."""
        meta = rec._meta if isinstance(rec._meta, str) else dumps(rec.meta)   # still as read: as it was
        row = (rec.id, rec.version, int(rec.deleted), self._data_text(rec.data), meta, dumps(sorted(rec.keys)),
               rec.created_at, rec.updated_at, rec.created_by, rec.updated_by)
        if self._in_tx:
            # Buffered: written with the others of the transaction by one executemany per
            # collection, before the next statement that may read (``_Conn``) or at commit. On
            # PostgreSQL that is one round trip for a push's records instead of one each.
            self._put_buf.append((rec.collection, row))
        else:
            self.conn.execute(_UPSERT.format(rec.collection), row)
        if self._in_tx:
            cached = self._rows.get((rec.collection, rec.id))
            # an upsert keeps created_at/created_by of a record that already existed
            self._rows[(rec.collection, rec.id)] = row if cached is None else \
                (*row[:6], cached[6], row[7], cached[8], row[9])
        self._feed(rec.collection, rec.id, set(old_keys) | set(rec.keys), seq)
        if rec.collection == "areas":
            self.set_meta("areas_version", str(seq))

    def set_keys(self, coll: str, rid: str, old_keys: Iterable[str], new_keys: Iterable[str], seq: int) -> None:
        """A scope-only change: the record enters or leaves keys without a new version."""
        old, new = set(old_keys), set(new_keys)
        keys_json = dumps(sorted(new))
        self.conn.execute(f"UPDATE {coll} SET keys = ? WHERE id = ?", (keys_json, rid))
        cached = self._rows.get((coll, rid)) if self._in_tx else None
        if cached is not None:
            self._rows[(coll, rid)] = (*cached[:5], keys_json, *cached[6:])
        self._feed(coll, rid, old ^ new, seq)

    def _feed(self, coll: str, rid: str, keys: Iterable[str], seq: int) -> None:
        rows = [(k, coll, rid, seq) for k in keys]
        if self._in_tx:
            self._feed_buf.extend(rows)   # written at commit, in order: a later seq wins (``_flush``)
            return
        self.conn.executemany(
            "INSERT INTO feed (key, collection, id, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key, collection, id) DO UPDATE SET seq = excluded.seq", rows)

    def ids_where(self, coll: str, column: str, value: str) -> list[str]:
        """Ids of the records whose indexed ``column`` equals ``value`` (tombstones included)."""
        assert any(c == column for c, _ in INDEXED[coll])
        return [r[0] for r in self.conn.execute(f"SELECT id FROM {coll} WHERE {column} = ?", (value,))]

    def matter_ids_in_category(self, code: str) -> list[str]:
        """Ids of the matters of a category (a catalogue edit: rare, so a scan is fine)."""
        return [r[0] for r in self.conn.execute(
            f"SELECT id FROM matters WHERE {self._jt('data', 'category')} = ?", (code,))]

    def active_assignees(self, household_id: str, ended_statuses: Iterable[str]) -> set[str]:
        ended = list(ended_statuses)
        q = ",".join("?" * len(ended))
        return {r[0] for r in self.conn.execute(
            f"SELECT DISTINCT assignee_id FROM matters WHERE household_id = ? AND deleted = 0 "
            f"AND assignee_id IS NOT NULL AND status NOT IN ({q})", (household_id, *ended))}

    def feed_page(self, keys: Iterable[str], after: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to ``limit`` + 1 feed entries per key after ``after``, merged in sequence order."""
        if self._in_tx:
            self._flush()
        keys = sorted(set(keys))
        if not keys:
            return []
        part = "SELECT * FROM (SELECT seq, collection, id FROM feed WHERE key = ? AND seq > ? ORDER BY seq LIMIT ?) AS f"
        sql = " UNION ALL ".join([part] * len(keys))
        params: list[Any] = []
        for k in keys:
            params += [k, after, limit + 1]
        rows = self.conn.execute(sql, params).fetchall()
        return sorted((r[0], r[1], r[2]) for r in rows)

    # -- areas -------------------------------------------------------------------------------
    def all_areas(self) -> list[tuple[str, str | None, str, bool, bool]]:
        """(id, parent_id, level, mountain, deleted) for every area."""
        return [(r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in self.conn.execute(
            f"SELECT id, parent_id, {self._jt('data', 'level')}, {self._jtrue('data', 'mountain')}, deleted FROM areas")]

    def areas_version(self) -> int:
        """Changes when any area changes: the cache key of the area tree (one indexed read)."""
        return int(self.get_meta("areas_version") or 0)

    # -- idempotency -------------------------------------------------------------------------
    def logged_result(self, user_id: str, mid: str) -> dict[str, Any] | None:
        if self._in_tx and (user_id, mid) in self._logged:
            result: dict[str, Any] = loads(self._logged[(user_id, mid)])
            return result
        r = self.conn.execute("SELECT result FROM mutation_log WHERE user_id = ? AND mid = ?", (user_id, mid)).fetchone()
        return loads(r[0]) if r else None

    def logged_results(self, user_id: str, mids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The recorded results of those of ``mids`` this user already pushed, in one query per 500."""
        mids = [m for m in dict.fromkeys(mids) if isinstance(m, str)]
        out: dict[str, dict[str, Any]] = {}
        if self._in_tx:   # logged earlier in this transaction (a retry queued in the same group commit)
            for m in mids:
                if (user_id, m) in self._logged:
                    out[m] = loads(self._logged[(user_id, m)])
            mids = [m for m in mids if m not in out]
        for i in range(0, len(mids), 500):
            chunk = mids[i:i + 500]
            q = ",".join("?" * len(chunk))
            for mid, result in self.conn.execute(
                    f"SELECT mid, result FROM mutation_log WHERE user_id = ? AND mid IN ({q})", (user_id, *chunk)):
                out[mid] = loads(result)
        return out

    def log_result(self, user_id: str, mid: str, device_id: str, result: dict[str, Any], at: str) -> None:
        row = (user_id, mid, device_id, dumps(result), at)
        if self._in_tx:
            self._log_buf.append(row)     # written at commit with the rest of the transaction
            self._logged[(user_id, mid)] = row[3]
            return
        self.conn.execute("INSERT INTO mutation_log VALUES (?, ?, ?, ?, ?)", row)

    # -- accounts ----------------------------------------------------------------------------
    def user_by_username(self, username: str) -> StoredRecord | None:
        r = self.conn.execute("SELECT id FROM users WHERE username = ? AND deleted = 0", (username,)).fetchone()
        return self.get("users", r[0]) if r else None

    def password_hash(self, user_id: str) -> str | None:
        r = self.conn.execute("SELECT password_hash FROM credentials WHERE user_id = ?", (user_id,)).fetchone()
        return r[0] if r else None

    def set_password_hash(self, user_id: str, hashed: str, must_change: bool = False) -> None:
        self.conn.execute("INSERT INTO credentials (user_id, password_hash, updated_at, must_change) "
                          "VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
                          "password_hash = excluded.password_hash, updated_at = excluded.updated_at, "
                          "must_change = excluded.must_change",
                          (user_id, hashed, iso(utcnow()), 1 if must_change else 0))

    def password_must_change(self, user_id: str) -> bool:
        r = self.conn.execute("SELECT must_change FROM credentials WHERE user_id = ?", (user_id,)).fetchone()
        return bool(r and r[0])

    def one_time_password_users(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT user_id FROM credentials WHERE must_change = 1")}

    def add_device(self, device: dict[str, Any]) -> None:
        self.conn.execute("INSERT INTO devices (id, user_id, name, token_hash, lineage_id, created_at) "
                          "VALUES (:id, :user_id, :name, :token_hash, :lineage_id, :created_at)", device)

    def device(self, device_id: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        return dict(r) if r else None

    def device_by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM devices WHERE token_hash = ?", (token_hash,)).fetchone()
        return dict(r) if r else None

    def devices(self, user_id: str | None = None) -> list[dict[str, Any]]:
        if user_id:
            rows = self.conn.execute("SELECT * FROM devices WHERE user_id = ? ORDER BY created_at", (user_id,))
        else:
            rows = self.conn.execute("SELECT * FROM devices ORDER BY user_id, created_at")
        return [dict(r) for r in rows]

    def touch_device(self, device_id: str, column: str, at: str, outbox_depth: int | None = None,
                     app_version: str | None = None) -> None:
        assert column in ("last_seen_at", "last_push_at", "last_pull_at")
        self.conn.execute(f"UPDATE devices SET last_seen_at = ?, {column} = ?, "
                          f"outbox_depth = coalesce(?, outbox_depth), app_version = coalesce(?, app_version) "
                          f"WHERE id = ?", (at, at, outbox_depth, app_version, device_id))

    def revoke_device(self, device_id: str, by: str | None, at: str) -> bool:
        cur = self.conn.execute("UPDATE devices SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
                                (at, by, device_id))
        return bool(cur.rowcount > 0)

    # -- blobs -------------------------------------------------------------------------------
    def blob(self, sha: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM blobs WHERE sha256 = ?", (sha,)).fetchone()
        return dict(r) if r else None

    def blob_upload(self, sha: str, user_id: str) -> dict[str, Any] | None:
        """The user's unfinished upload of a blob, if any."""
        r = self.conn.execute("SELECT * FROM blob_uploads WHERE sha256 = ? AND user_id = ?", (sha, user_id)).fetchone()
        return dict(r) if r else None

    def blob_uploads_unfinished(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM blob_uploads ORDER BY started_at, sha256, user_id")]

    def blob_pending_bytes(self, user_id: str) -> int:
        """Bytes announced (``Upload-Length``) by the user's unfinished uploads."""
        return int(self.conn.execute("SELECT coalesce(sum(length), 0) FROM blob_uploads WHERE user_id = ?",
                                     (user_id,)).fetchone()[0])

    def blob_upload_start(self, sha: str, user_id: str, length: int, partial: str, at: str) -> None:
        """Start the user's upload, unless they have one already; ``blobs`` gets a row (incomplete)
        the first time a hash is uploaded."""
        self.conn.execute("INSERT INTO blob_uploads (sha256, user_id, length, partial, started_at, received, touched_at) "
                          "VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING", (sha, user_id, length, partial, at, at))
        self.conn.execute("INSERT INTO blobs (sha256, length, complete, uploaded_by, created_at) VALUES (?, ?, 0, ?, ?) "
                          "ON CONFLICT(sha256) DO NOTHING", (sha, length, user_id, at))

    def blob_chunk_received(self, sha: str, user_id: str, partial: str, start: int, length: int, name: str,
                            at: str) -> bool:
        """Count a chunk stored (as ``name``) at ``start`` of the user's upload ``partial``: its offset
        moves on by ``length``. False, and nothing changes, when that upload no longer holds exactly
        ``start`` bytes: another server took that chunk first, or the upload ended meanwhile."""
        cur = self.conn.execute("UPDATE blob_uploads SET received = coalesce(received, 0) + ?, touched_at = ? "
                                "WHERE sha256 = ? AND user_id = ? AND partial = ? AND coalesce(received, 0) = ?",
                                (length, at, sha, user_id, partial, start))
        if cur.rowcount != 1:
            return False
        self.conn.execute("INSERT INTO blob_chunks VALUES (?, ?, ?, ?, ?)", (sha, user_id, start, length, name))
        return True

    def blob_upload_received(self, sha: str, user_id: str, received: int, touched_at: str) -> None:
        """Set what an upload begun before migration 0003 holds (read from its partial file)."""
        self.conn.execute("UPDATE blob_uploads SET received = ?, touched_at = ? WHERE sha256 = ? AND user_id = ?",
                          (received, touched_at, sha, user_id))

    def blob_chunks(self, sha: str, user_id: str) -> list[tuple[int, int, str]]:
        """The chunks of the user's upload, ``(start, length, name)`` in order."""
        return [(int(r[0]), int(r[1]), str(r[2])) for r in self.conn.execute(
            "SELECT start, length, name FROM blob_chunks WHERE sha256 = ? AND user_id = ? ORDER BY start", (sha, user_id))]

    def blob_upload_forget(self, sha: str, user_id: str, partial: str, untouched_before: str | None = None) -> bool:
        """End the user's upload ``partial`` without a blob (discarded, or expired when
        ``untouched_before`` is given and no chunk came since). Returns whether there was one."""
        sql = "DELETE FROM blob_uploads WHERE sha256 = ? AND user_id = ? AND partial = ?"
        args = [sha, user_id, partial]
        if untouched_before is not None:
            sql += " AND coalesce(touched_at, started_at) < ?"
            args.append(untouched_before)
        cur = self.conn.execute(sql, args)
        if cur.rowcount == 0:
            return False
        self.conn.execute("DELETE FROM blob_chunks WHERE sha256 = ? AND user_id = ?", (sha, user_id))
        self.conn.execute("DELETE FROM blobs WHERE sha256 = ? AND complete = 0 AND NOT EXISTS "
                          "(SELECT 1 FROM blob_uploads WHERE sha256 = ?)", (sha, sha))
        return True

    def blob_uploaded(self, sha: str, user_id: str, length: int, at: str) -> None:
        """The user uploaded every byte (hash checked): their upload ends, they hold the blob, their
        citations of it are proven, and the blob is complete (``uploaded_by``: its first holder)."""
        self.conn.execute("DELETE FROM blob_uploads WHERE sha256 = ? AND user_id = ?", (sha, user_id))
        self.conn.execute("DELETE FROM blob_chunks WHERE sha256 = ? AND user_id = ?", (sha, user_id))
        self.conn.execute("INSERT INTO blob_holders VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (sha, user_id, at))
        self.conn.execute(
            "INSERT INTO blobs (sha256, length, complete, uploaded_by, created_at, completed_at) VALUES (?, ?, 1, ?, ?, ?) "
            "ON CONFLICT(sha256) DO UPDATE SET length = excluded.length, completed_at = coalesce(blobs.completed_at, "
            "excluded.completed_at), uploaded_by = CASE WHEN blobs.complete = 1 THEN blobs.uploaded_by "
            "ELSE excluded.uploaded_by END, complete = 1", (sha, length, user_id, at, at))
        self.conn.execute("UPDATE blob_refs SET proven = 1 WHERE sha256 = ? AND cited_by = ?", (sha, user_id))

    def blob_holds(self, sha: str, user_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM blob_holders WHERE sha256 = ? AND user_id = ?",
                                 (sha, user_id)).fetchone() is not None

    def cite_blobs(self, coll: str, rid: str, citations: Iterable[tuple[str, str | None, bool]]) -> None:
        """Add citations ``(sha256, cited_by, proven)`` of record ``coll``/``rid``."""
        self.conn.executemany("INSERT INTO blob_refs (sha256, collection, record_id, cited_by, proven) "
                              "VALUES (?, ?, ?, ?, ?)", [(s, coll, rid, by, int(p)) for s, by, p in citations])

    def uncite_blobs(self, coll: str, rid: str, shas: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM blob_refs WHERE sha256 = ? AND collection = ? AND record_id = ?",
                              [(s, coll, rid) for s in shas])

    def blob_referrers(self, sha: str) -> list[tuple[str, str]]:
        """Every record that cites the blob, proven or not."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT collection, record_id FROM blob_refs WHERE sha256 = ?", (sha,))]

    def blob_proven_referrers(self, sha: str) -> list[tuple[str, str]]:
        """The records whose citation of the blob lets their readers read it."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT collection, record_id FROM blob_refs WHERE sha256 = ? AND proven = 1", (sha,))]

    def blob_citation_proven(self, sha: str, coll: str, rid: str) -> bool:
        """Whether record ``coll``/``rid`` cites the blob with a proven citation."""
        return self.conn.execute("SELECT 1 FROM blob_refs WHERE sha256 = ? AND collection = ? AND record_id = ? "
                                 "AND proven = 1", (sha, coll, rid)).fetchone() is not None

    def blob_citers(self, sha: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT cited_by FROM blob_refs WHERE sha256 = ? AND cited_by IS NOT NULL ORDER BY 1", (sha,))]

    def blob_refs_of(self, coll: str, rid: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT sha256 FROM blob_refs WHERE collection = ? AND record_id = ?", (coll, rid))]

    # -- audit -------------------------------------------------------------------------------
    def audit(self, user_id: str | None, action: str, coll: str | None = None, rid: str | None = None,
              details: dict[str, Any] | None = None) -> None:
        self.conn.execute("INSERT INTO audit (at, user_id, action, collection, record_id, details) VALUES (?, ?, ?, ?, ?, ?)",
                          (iso(utcnow()), user_id, action, coll, rid, dumps(details) if details else None))

    # -- maintenance -------------------------------------------------------------------------
    def backup_to(self, dest: str) -> None:
        """An online, consistent copy (the SQLite backup API) with a new cursor epoch.

        Serving the copy later is a restore: cursors issued before it no longer match its epoch,
        so phones get ``410 cursor_expired`` and resync instead of silently missing changes.
        The copy's change counter also skips ``VERSION_GAP`` versions, which the live server may
        issue after the copy: a restored server never gives a version a phone saw on the lost
        timeline to another change (see ``known_base``).
        """
        if os.path.exists(dest):
            raise FileExistsError(dest)
        target = sqlite3.connect(dest)
        try:
            self.conn.backup(target)
            target.execute("UPDATE server_meta SET value = ? WHERE key = 'epoch'", (secrets.token_hex(8),))
            (head,) = target.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
            row = target.execute("SELECT value FROM server_meta WHERE key = 'lost_versions'").fetchone()
            lost = [*loads(row[0] if row else "[]"), [int(head), int(head) + VERSION_GAP]]
            target.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (int(head) + VERSION_GAP,))
            target.execute("INSERT INTO server_meta VALUES ('lost_versions', ?) ON CONFLICT(key) DO UPDATE "
                           "SET value = excluded.value", (dumps(lost),))
            target.commit()
        finally:
            target.close()

    def known_base(self, base: int) -> int:
        """A mutation's ``base`` as this database's history knows it.

        In a restored backup, a base among the versions skipped at the copy was seen on the live
        server after the copy was taken: the phone saw all that the copy holds (up to the copy's
        head, which is returned) and changes that are gone. Such a base is not "newer than the
        record" (``invalid_base``) even where it is numerically: refusing it would lose the edit.
        Taken as it is, once the restored server's versions caught up it would claim to have
        seen changes made after the restore, and overwrite them without a conflict.
        """
        for lo, hi in loads(self.get_meta("lost_versions") or "[]"):
            if lo < base <= hi:
                return int(lo)
        return base

    def purge(self, before: str) -> dict[str, int]:
        """Forget deletions and scope exits older than ``before`` (the retention), and old idempotency results.

        The horizon becomes the newest version written before ``before``: a cursor older than that
        may have missed a deletion that is now forgotten, so pulls from it get ``cursor_expired``.
        """
        out = {"tombstones": 0, "exits": 0, "results": 0}
        with self.transaction():
            horizon = int(self.get_meta("horizon") or 0)
            for coll in COLLECTIONS:
                row = self.conn.execute(f"SELECT max(version) FROM {coll} WHERE updated_at < ?", (before,)).fetchone()
                horizon = max(horizon, int(row[0] or 0))
            for coll in COLLECTIONS:
                ids = [r[0] for r in self.conn.execute(
                    f"SELECT id FROM {coll} WHERE deleted = 1 AND version <= ?", (horizon,))]
                for rid in ids:
                    self.conn.execute("DELETE FROM feed WHERE collection = ? AND id = ?", (coll, rid))
                    self.conn.execute(f"DELETE FROM {coll} WHERE id = ?", (rid,))
                    self.conn.execute("DELETE FROM blob_refs WHERE collection = ? AND record_id = ?", (coll, rid))
                out["tombstones"] += len(ids)
                # scope exits: feed rows under keys the record no longer has
                cur = self.conn.execute(
                    f"DELETE FROM feed WHERE collection = ? AND seq <= ? AND id IN (SELECT id FROM {coll}) AND NOT EXISTS "
                    f"(SELECT 1 FROM {coll} r WHERE r.id = feed.id AND {self._key_held('r.keys', 'feed.key')})",
                    (coll, horizon))
                out["exits"] += cur.rowcount
            out["results"] = self.conn.execute("DELETE FROM mutation_log WHERE created_at < ?", (before,)).rowcount
            self.set_meta("horizon", str(horizon))
        return out

    # -- read models and queries for the console, metrics, CLI ------------------------------------
    # The reads the console pages, the dashboard figures, the CLI and the proxy reports need, named
    # (``sync.storage.Store`` says what each returns). Scope is the caller's keys, met here by
    # ``_keys_meet``; the few fragments that differ between SQLite and PostgreSQL (JSON fields, lists
    # passed as one JSON parameter, local dates) are the dialect methods above, which
    # ``sync.store_pg.PostgresStore`` overrides: each query is written once.
    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (before the file is moved into place)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def live_count(self, coll: str, column: str | None = None, value: str | None = None) -> int:
        assert coll in COLLECTIONS
        if column is None:
            return int(self.conn.execute(f"SELECT count(*) FROM {coll} WHERE deleted = 0").fetchone()[0])
        assert any(c == column for c, _ in INDEXED[coll])
        return int(self.conn.execute(f"SELECT count(*) FROM {coll} WHERE {column} = ? AND deleted = 0",
                                     (value,)).fetchone()[0])

    def record_count(self, coll: str) -> int:
        assert coll in COLLECTIONS
        return int(self.conn.execute(f"SELECT count(*) FROM {coll}").fetchone()[0])

    def record_versions(self, coll: str) -> dict[str, int]:
        assert coll in COLLECTIONS
        return {r[0]: int(r[1]) for r in self.conn.execute(f"SELECT id, version FROM {coll}")}

    def live_records(self, coll: str) -> list[IdData]:
        assert coll in COLLECTIONS
        return [(r[0], loads(r[1])) for r in self.conn.execute(f"SELECT id, data FROM {coll} WHERE deleted = 0")]

    def live_ids_where(self, coll: str, column: str, value: str) -> list[str]:
        assert any(c == column for c, _ in INDEXED[coll])
        return [r[0] for r in self.conn.execute(f"SELECT id FROM {coll} WHERE {column} = ? AND deleted = 0", (value,))]

    def live_where_in(self, coll: str, column: str, values: Sequence[str]) -> list[IdData]:
        assert any(c == column for c, _ in INDEXED[coll])
        return [(r[0], loads(r[1])) for r in self.conn.execute(
            f"SELECT id, data FROM {coll} WHERE deleted = 0 AND {column} IN {self._in_list()}", (dumps(list(values)),))]

    def residents_with_id_numbers(self, numbers: Sequence[str]) -> list[IdData]:
        # issue 14 (the household roster): no index on the number; one scan per import, not per row
        return [(r[0], loads(r[1])) for r in self.conn.execute(
            f"SELECT id, data FROM residents WHERE deleted = 0 AND {self._jt('data', 'id_number')} IN {self._in_list()}",
            (dumps(list(numbers)),))]

    def live_users(self) -> list[IdData]:
        return [(r[0], loads(r[1])) for r in self.conn.execute(
            "SELECT id, data FROM users WHERE deleted = 0 ORDER BY username")]

    def all_user_names(self) -> dict[str, tuple[str | None, str | None]]:
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(
            f"SELECT id, {self._jt('data', 'display_name')}, username FROM users")}

    def live_area_names(self) -> dict[str, str | None]:
        return {r[0]: r[1] for r in self.conn.execute(
            f"SELECT id, {self._jt('data', 'name')} FROM areas WHERE deleted = 0")}

    def area_labels(self, ids: Iterable[str]) -> dict[str, tuple[str | None, Any]]:
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(
            f"SELECT id, {self._jt('data', 'name')}, {self._jv('data', 'sort')} FROM areas "
            f"WHERE id IN {self._in_list()}", (dumps(list(ids)),))}

    def active_devices_of(self, user_ids: Iterable[str]) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT id, user_id, name, last_seen_at, outbox_depth, app_version FROM devices "
            f"WHERE revoked_at IS NULL AND user_id IN {self._in_list()} ORDER BY last_seen_at",
            (dumps(list(user_ids)),))]

    def conflict_ids_about(self, record_ids: Sequence[str], open_only: bool = False) -> list[str]:
        if not record_ids:
            return []
        return [r[0] for r in self.conn.execute(
            f"SELECT id FROM conflicts WHERE {self._jt('data', 'record_id')} IN {self._in_list()} AND deleted = 0"
            + (" AND status = 'open'" if open_only else ""), (dumps(list(record_ids)),))]

    def _matter_order(self, sort: MatterSort, ended: Sequence[str] = ()) -> str:
        """ORDER BY for ``sort``; overdue_days has a parameter for each of ``ended`` (after the WHERE's)."""
        return {
            "raised": "m.raised_at DESC",
            "raised_asc": "m.raised_at ASC",
            "deadline": "coalesce(m.deadline, '9999') ASC",
            "updated": "m.updated_at DESC",
            "overdue_days": f"CASE WHEN {self._deadline('m')} IS NOT NULL AND m.status NOT IN "
                            f"({','.join('?' * len(ended))}) THEN 0 ELSE 1 END, {self._deadline('m')} ASC",
        }[sort]

    def _deadline(self, alias: str) -> str:
        """A matter's deadline as it stands: the effective one (extended, paused) or the one set
        (the column ``held_to``, computed from the data: ``MATTER_COLUMNS``)."""
        return f"{alias}.held_to"

    def _overdue(self, alias: str, ended: Sequence[str]) -> tuple[str, list[Any]]:
        """Condition and parameters (after the date, the first ``?``): the matter is overdue on that
        date — ``workflow.is_overdue``, the same rule in SQL (a stopped clock is never overdue)."""
        skip = [*ended, *workflow.CLOCK_STOPPED]
        return f"{self._deadline(alias)} < ? AND {alias}.status NOT IN ({','.join('?' * len(skip))})", skip

    def _due_soon(self, alias: str, ended: Sequence[str]) -> tuple[str, list[Any]]:
        """Condition and parameters (after the two dates, the first two ``?``): the matter is 即将超期
        from the first date to the second — ``workflow.is_due_soon``, the same rule in SQL."""
        skip = [*ended, *workflow.CLOCK_STOPPED]
        return (f"{self._deadline(alias)} >= ? AND {self._deadline(alias)} <= ? "
                f"AND {alias}.status NOT IN ({','.join('?' * len(skip))})", skip)

    def _matters_where(self, grid_ids: Iterable[str], keys: Iterable[str], flt: MatterFilter
                       ) -> tuple[str, list[Any]]:
        """``FROM … WHERE …`` of the matters that pass ``flt``, and its parameters."""
        grid = "h.grid_id" if not flt.statuses else self._unindexed("h.grid_id")
        where = ["m.deleted = 0", "h.deleted = 0", f"{grid} IN {self._in_list()}", self._keys_meet("m")]
        args: list[Any] = [dumps(list(grid_ids)), dumps(sorted(keys))]
        if flt.statuses:
            where.append(f"m.status IN ({','.join('?' * len(flt.statuses))})")
            args.extend(flt.statuses)
        if flt.not_statuses:
            where.append(f"coalesce(m.status, '') NOT IN ({','.join('?' * len(flt.not_statuses))})")
            args.extend(flt.not_statuses)
        for name, value in (("category", flt.category), ("line", flt.line), ("channel", flt.channel),
                            ("handling_mode", flt.handling_mode)):
            if value:
                where.append(f"m.{name} = ?")
                args.append(value)
        if flt.assignee_id:
            where.append("m.assignee_id = ?")
            args.append(flt.assignee_id)
        if flt.supervised:
            where.append("m.supervised IN ('1', 'true')")
        if flt.overdue_on:
            cond, skip = self._overdue("m", flt.ended)
            where.append(cond)
            args.extend([flt.overdue_on, *skip])
        if flt.due_soon_on:
            cond, skip = self._due_soon("m", flt.ended)
            where.append(cond)
            args.extend([flt.due_soon_on, flt.due_soon_until, *skip])
        where.extend(self._card_filters(flt, args))
        if flt.text:
            like = self._like
            where.append(f"({self._jt('m.data', 'title')} {like} ? ESCAPE '\\' OR {self._jt('m.data', 'description')} "
                         f"{like} ? ESCAPE '\\' OR h.head_name {like} ? ESCAPE '\\' "
                         f"OR h.address {like} ? ESCAPE '\\' OR {self._jt('m.data', 'number')} = ?)")
            args.extend([*[_contains(flt.text)] * 4, flt.text.strip()])
        return f"FROM {self._live_matters(covering=not flt.statuses)} WHERE {' AND '.join(where)}", args

    def _matters_order(self, flt: MatterFilter, sort: MatterSort) -> tuple[str, list[Any]]:
        skip = [*flt.ended, *workflow.CLOCK_STOPPED]
        return f"ORDER BY {self._matter_order(sort, skip)}, m.id", (skip if sort == "overdue_days" else [])

    def _matters_select(self, base: str, flt: MatterFilter, sort: MatterSort) -> tuple[str, list[Any]]:
        order, order_args = self._matters_order(flt, sort)
        return f"SELECT m.id, m.data, m.version, h.id, h.data {base} {order}", order_args

    def matters_page(self, grid_ids: Iterable[str], keys: Iterable[str], flt: MatterFilter, sort: MatterSort,
                     limit: int | None, offset: int = 0) -> tuple[list[MatterRow], int]:
        base, args = self._matters_where(grid_ids, keys, flt)
        if not limit:
            total = int(self.conn.execute(f"SELECT count(*) {base}", args).fetchone()[0])
            sql, order_args = self._matters_select(base, flt, sort)
            rows = self.conn.execute(sql, [*args, *order_args])
            return [MatterRow(r[0], r[2], loads(r[1]), r[3], loads(r[4])) for r in rows], total
        # A page: its ids in order from the indexes, with the total counted in the same pass (a page
        # past the end has no row to carry it: counted apart), then the rows of those ids only (not
        # of every matter that passed the filters).
        order, order_args = self._matters_order(flt, sort)
        found = self.conn.execute(
            f"SELECT m.id, count(*) OVER () {base} {order} LIMIT {int(limit)} OFFSET {int(offset)}",
            [*args, *order_args]).fetchall()
        ids = [r[0] for r in found]
        total = int(found[0][1]) if found else int(self.conn.execute(f"SELECT count(*) {base}", args).fetchone()[0])
        got = {r[0]: MatterRow(r[0], r[2], loads(r[1]), r[3], loads(r[4])) for r in self.conn.execute(
            f"SELECT m.id, m.data, m.version, h.id, h.data FROM matters m JOIN households h ON h.id = m.household_id "
            f"WHERE m.id IN {self._in_list()}", (dumps(ids),))}
        return [got[i] for i in ids if i in got], total

    def matters_iter(self, grid_ids: Iterable[str], keys: Iterable[str], flt: MatterFilter, sort: MatterSort,
                     batch: int = 500) -> Iterator[list[MatterRow]]:
        base, args = self._matters_where(grid_ids, keys, flt)
        sql, order_args = self._matters_select(base, flt, sort)
        with self._streaming(sql, [*args, *order_args]) as fetch:
            while True:
                rows = fetch(batch)
                if not rows:
                    return
                yield [MatterRow(r[0], r[2], loads(r[1]), r[3], loads(r[4])) for r in rows]

    @contextlib.contextmanager
    def _streaming(self, sql: str, args: list[Any]) -> Iterator[Callable[[int], list[Any]]]:
        """``fetch(n)``: the next ``n`` rows of one query, read as they are asked for (SQLite steps its
        cursor; PostgreSQL overrides this with a server-side cursor), in one read snapshot."""
        with self.read():
            cur = self.conn.execute(sql, args)
            yield cur.fetchmany

    def _card_filters(self, flt: MatterFilter, args: list[Any]) -> list[str]:
        """The conditions of the filters the dashboard's cards open (issue 14), their parameters appended
        to ``args``: the same definitions as ``server.metrics`` (collected, resolved, on time, 不下山,
        satisfaction)."""
        where: list[str] = []
        raised = self._local_date("m.raised_at")    # the computed columns (MATTER_COLUMNS)
        done = self._local_date("m.done_at")
        for expr, op, value in ((raised, ">=", flt.raised_from), (raised, "<", flt.raised_before),
                                (done, ">=", flt.resolved_from), (done, "<", flt.resolved_before)):
            if value:
                where.append(f"{expr} {op} ?")
                args.append(value)
        if flt.with_deadline or flt.on_time:
            where.append(f"coalesce({self._deadline('m')}, '') != ''")
        if flt.on_time:
            where.append(f"{done} <= {self._deadline('m')}")
        if flt.delegated:
            where.append(f"EXISTS (SELECT 1 FROM matter_events d WHERE d.matter_id = m.id AND d.deleted = 0 "
                         f"AND {self._jt('d.data', 'kind')} = 'delegation')")
        if flt.feedback in ("rated", "satisfied"):
            # the latest rating counts (server.metrics: satisfied, else a rating of 4 or more)
            def rated(a: str) -> str:
                return (f"{a}.matter_id = m.id AND {a}.deleted = 0 AND {self._jt(a + '.data', 'kind')} = 'feedback' "
                        f"AND ({self._jt(a + '.data', 'data.rating')} IS NOT NULL "
                        f"OR {self._jt(a + '.data', 'data.satisfied')} IS NOT NULL)")
            happy = (f" AND CASE WHEN {self._jt('e.data', 'data.satisfied')} IS NOT NULL "
                     f"THEN {self._jtrue('e.data', 'data.satisfied')} "
                     f"ELSE CAST({self._jt('e.data', 'data.rating')} AS REAL) >= 4 END"
                     if flt.feedback == "satisfied" else "")
            where.append(f"EXISTS (SELECT 1 FROM matter_events e WHERE {rated('e')}{happy} AND NOT EXISTS ("
                         f"SELECT 1 FROM matter_events l WHERE {rated('l')} "
                         f"AND {self._julian(self._jt('l.data', 'at'))} > {self._julian(self._jt('e.data', 'at'))}))")
        return where

    def possible_duplicates(self, matter_id: str, household_id: str | None, resident_id: str, raised_from: str,
                            raised_to: str, keys: Iterable[str]) -> list[IdData]:
        return [(r[0], loads(r[1])) for r in self.conn.execute(
            f"SELECT id, data FROM matters m WHERE deleted = 0 AND id != ? AND (household_id = ? OR "
            f"{self._jt('data', 'resident_id')} = ?) AND substr({self._jt('data', 'raised_at')}, 1, 10) "
            f"BETWEEN ? AND ? AND status NOT IN ('merged_duplicate', 'not_accepted') AND {self._keys_meet('m')}",
            (matter_id, household_id, resident_id, raised_from, raised_to, dumps(sorted(keys))))]

    def _indexed_by(self, index: str) -> str:
        """Read a table through ``index`` (SQLite's planner does not know that a JSON row is large and
        prefers scanning the table to scanning a covering index of it; PostgreSQL plans by itself)."""
        return f" INDEXED BY {index}"

    def household_search(self, grid_ids: Iterable[str], text: str, tag: str, limit: int,
                         offset: int = 0) -> tuple[list[IdData], int]:
        grid = self._unindexed("h.grid_id") if text else "h.grid_id"    # text: the hits are found first
        where = ["h.deleted = 0", f"{grid} IN {self._in_list()}"]
        args: list[Any] = [dumps(list(grid_ids))]
        if text:
            # Head, address or phone of the household, or a live resident's name or phone: the hits come
            # from the search indexes (migration 0007), then only their rows are read.
            like = self._like
            where.append(f"""h.id IN (
                SELECT id FROM households{self._indexed_by('households_search')}
                WHERE deleted = 0 AND (head_name {like} ? ESCAPE '\\' OR address {like} ? ESCAPE '\\'
                                       OR phone {like} ? ESCAPE '\\')
                UNION
                SELECT household_id FROM residents{self._indexed_by('residents_search')}
                WHERE deleted = 0 AND (name {like} ? ESCAPE '\\' OR phone {like} ? ESCAPE '\\'))""")
            args.extend([_contains(text)] * 5)
        if tag:
            where.append(self._json_has("h.data", "tags"))
            args.append(tag)
        return self._households_page(where, args, limit, offset)

    def _households_page(self, where: list[str], args: list[Any], limit: int, offset: int
                         ) -> tuple[list[IdData], int]:
        """One page of the households that pass ``where`` (by address, then id), and how many pass."""
        sql = " AND ".join(where)
        total = int(self.conn.execute(f"SELECT count(*) FROM households h WHERE {sql}", args).fetchone()[0])
        rows = [(r[0], loads(r[1])) for r in self.conn.execute(
            f"SELECT h.id, h.data FROM households h WHERE {sql} ORDER BY {self._jt('h.data', 'address')}, h.id "
            f"LIMIT {int(limit)} OFFSET {int(offset)}", args)]
        return rows, total

    def residents_of(self, household_id: str) -> list[IdData]:
        return [(r[0], loads(r[1])) for r in self.conn.execute(
            "SELECT id, data FROM residents WHERE household_id = ? AND deleted = 0 ORDER BY created_at", (household_id,))]

    def visits_of(self, household_id: str, limit: int) -> list[IdData]:
        return [(r[0], loads(r[1])) for r in self.conn.execute(
            "SELECT id, data FROM visits WHERE household_id = ? AND deleted = 0 ORDER BY visited_at DESC LIMIT ?",
            (household_id, limit))]

    def household_matters(self, household_id: str, keys: Iterable[str]) -> list[IdData]:
        return [(r[0], loads(r[1])) for r in self.conn.execute(
            f"SELECT id, data FROM matters m WHERE household_id = ? AND deleted = 0 AND {self._keys_meet('m')}",
            (household_id, dumps(sorted(keys))))]

    def _live_matters(self, covering: bool = True) -> str:
        """The matters of the live households of the grids given as the next parameter, read from
        the indexes alone (``households_grid_live``, ``matters_dashboard``: migration 0007). Not
        ``covering``: the planner chooses (a status picks few matters through ``matters_status``)."""
        if not covering:
            return "matters m JOIN households h ON h.id = m.household_id"
        return (f"households h{self._indexed_by('households_grid_live')} "
                f"JOIN matters m{self._indexed_by('matters_dashboard')} ON m.household_id = h.id")

    def dashboard_matters(self, grid_ids: Iterable[str], start: str, end: str,
                          keys: Iterable[str] | None) -> list[DashboardMatter]:
        seen_sql, seen_args = self._seen(keys)
        raised = self._local_date("m.raised_at")
        done = self._local_date("m.done_at")
        rows = self.conn.execute(
            f"""SELECT m.id, h.grid_id, m.status, m.handling_mode, {self._deadline('m')},
                       {raised}, {done}
                FROM {self._live_matters()}
                WHERE m.deleted = 0 AND h.deleted = 0 AND h.grid_id IN {self._in_list()}
                  AND {raised} >= ? AND {raised} < ?
                  AND coalesce(m.status, '') != 'merged_duplicate'{seen_sql}""",
            (dumps(list(grid_ids)), start, end, *seen_args))
        return [DashboardMatter(*r) for r in rows]

    def matters_with_event(self, matter_ids: Iterable[str], kind: str) -> set[str]:
        return {r[0] for r in self.conn.execute(
            f"""SELECT DISTINCT e.matter_id FROM matter_events e{self._indexed_by('matter_events_kind')}
               WHERE e.matter_id IN {self._in_list()} AND e.deleted = 0
                 AND e.kind = ?""", (dumps(list(matter_ids)), kind))}

    def matters_now(self, grid_ids: Iterable[str], today: str, ended: Sequence[str],
                    keys: Iterable[str] | None) -> tuple[int, int]:
        seen_sql, seen_args = self._seen(keys)
        fin = ",".join("?" * len(ended))
        late, skip = self._overdue("m", ended)
        overdue, supervised = self.conn.execute(
            f"""SELECT coalesce(sum(CASE WHEN {late} THEN 1 ELSE 0 END), 0),
                       coalesce(sum(CASE WHEN m.supervised IN ('1', 'true') THEN 1 ELSE 0 END), 0)
                FROM {self._live_matters()}
                WHERE m.deleted = 0 AND h.deleted = 0 AND h.grid_id IN {self._in_list()}
                  AND m.status NOT IN ({fin}){seen_sql}""",
            (today, *skip, dumps(list(grid_ids)), *ended, *seen_args)).fetchone()
        return int(overdue), int(supervised)

    def feedback_of(self, matter_ids: Iterable[str]) -> list[Feedback]:
        return [Feedback(*r) for r in self.conn.execute(
            f"""SELECT e.matter_id, {self._julian(self._jt('e.data', 'at'))},
                      {self._jv('e.data', 'data.rating')}, {self._jv('e.data', 'data.satisfied')}
               FROM matter_events e{self._indexed_by('matter_events_kind')}
               WHERE e.matter_id IN {self._in_list()} AND e.deleted = 0
                 AND e.kind = 'feedback'""", (dumps(list(matter_ids)),))]

    def visited_households(self, start: str, end: str, recent_from: str) -> dict[str, bool]:
        """Found through the visited_at index: the stored strings carry their own offsets, so the
        index range is two days wider on each side and the time itself decides."""
        lo = (datetime.fromisoformat(start).astimezone(timezone.utc).date() - timedelta(days=2)).isoformat()
        hi = (datetime.fromisoformat(end).astimezone(timezone.utc).date() + timedelta(days=2)).isoformat()
        j = self._julian
        return {r[0]: bool(r[1]) for r in self.conn.execute(
            f"""SELECT household_id, max(j) >= {j('?')} FROM (
                  SELECT household_id, {j('visited_at')} AS j FROM visits{self._indexed_by('visits_visited_live')}
                  WHERE visited_at >= ? AND visited_at < ? AND deleted = 0) AS v
                WHERE j >= {j('?')} AND j < {j('?')} GROUP BY household_id""",
            (recent_from, lo, hi, start, end))}

    def households_tagged(self, grid_ids: Iterable[str], tags: Sequence[str]) -> list[TaggedHousehold]:
        has = "".join(f",\n {self._array_has('h.tags')}" for _ in tags)
        return [TaggedHousehold(r[0], r[1], tuple(bool(x) for x in r[2:])) for r in self.conn.execute(
            f"""SELECT h.id, h.grid_id{has}
               FROM households h{self._indexed_by('households_grid_live')}
               WHERE h.deleted = 0 AND h.grid_id IN {self._in_list()}""",
            (*tags, dumps(list(grid_ids))))]

    def resolved_per_day(self, grid_ids: Iterable[str], start: str, end: str,
                         keys: Iterable[str] | None) -> list[tuple[str, int]]:
        seen_sql, seen_args = self._seen(keys)
        done = self._local_date("m.done_at")
        return [(r[0], int(r[1])) for r in self.conn.execute(
            f"""SELECT d, count(*) FROM (
                  SELECT {done} AS d
                  FROM {self._live_matters()}
                  WHERE m.deleted = 0 AND h.deleted = 0 AND h.grid_id IN {self._in_list()}
                    AND m.status IN ('resolved', 'closed'){seen_sql}) AS r
                WHERE d >= ? AND d < ? GROUP BY d""",
            (dumps(list(grid_ids)), *seen_args, start, end))]

    def visit_counts(self, grid_ids: Iterable[str], start: str, end: str) -> tuple[int, int]:
        day = self._local_date("v.visited_at")
        visits, households = self.conn.execute(
            "SELECT count(*), count(DISTINCT v.household_id) FROM visits v JOIN households h ON h.id = v.household_id "
            f"WHERE v.deleted = 0 AND h.grid_id IN {self._in_list()} AND {day} >= ? AND {day} < ?",
            (dumps(list(grid_ids)), start, end)).fetchone()
        return int(visits), int(households)

    # -- the dashboard's charts, map and coverage list (issue 14) -----------------------------------
    def matter_breakdown(self, grid_ids: Iterable[str], start: str, end: str, keys: Iterable[str] | None
                         ) -> list[tuple[str, str | None, str | None, int, int]]:
        seen_sql, seen_args = self._seen(keys)
        raised = self._local_date(self._jt("m.data", "raised_at"))
        cat, line = self._jt("m.data", "category"), self._jt("m.data", "line")
        return [(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in self.conn.execute(
            f"""SELECT h.grid_id, {cat}, {line}, count(*),
                       coalesce(sum(CASE WHEN m.status IN ('resolved', 'closed') THEN 1 ELSE 0 END), 0)
                FROM matters m JOIN households h ON h.id = m.household_id
                WHERE m.deleted = 0 AND h.deleted = 0 AND h.grid_id IN {self._in_list()}
                  AND {raised} >= ? AND {raised} < ?
                  AND coalesce(m.status, '') != 'merged_duplicate'{seen_sql}
                GROUP BY h.grid_id, {cat}, {line}""",
            (dumps(list(grid_ids)), start, end, *seen_args))]

    def raised_per_day(self, grid_ids: Iterable[str], start: str, end: str,
                       keys: Iterable[str] | None) -> list[tuple[str, int]]:
        seen_sql, seen_args = self._seen(keys)
        raised = self._local_date(self._jt("m.data", "raised_at"))
        return [(r[0], int(r[1])) for r in self.conn.execute(
            f"""SELECT d, count(*) FROM (
                  SELECT {raised} AS d
                  FROM matters m JOIN households h ON h.id = m.household_id
                  WHERE m.deleted = 0 AND h.deleted = 0 AND h.grid_id IN {self._in_list()}
                    AND coalesce(m.status, '') != 'merged_duplicate'{seen_sql}) AS r
                WHERE d >= ? AND d < ? GROUP BY d""",
            (dumps(list(grid_ids)), *seen_args, start, end))]

    def _coord(self, expr: str, path: str) -> str:
        return f"CAST({self._jt(expr, path)} AS DOUBLE PRECISION)"

    def household_cells(self, grid_ids: Iterable[str]
                        ) -> list[tuple[str, int, int, float, float, float, float, float, float]]:
        lat, lng = self._coord("h.data", "location.lat"), self._coord("h.data", "location.lng")
        both = f"{lat} IS NOT NULL AND {lng} IS NOT NULL"
        return [(r[0], int(r[1]), int(r[2]), *(float(x) for x in r[3:])) for r in self.conn.execute(
            f"""SELECT h.grid_id, count(*), count(CASE WHEN {both} THEN 1 END),
                       min({lat}), max({lat}), min({lng}), max({lng}), avg({lat}), avg({lng})
                FROM households h
                WHERE h.deleted = 0 AND h.grid_id IN {self._in_list()}
                GROUP BY h.grid_id HAVING count(CASE WHEN {both} THEN 1 END) > 0""", (dumps(list(grid_ids)),))]

    def household_points(self, grid_ids: Iterable[str]) -> list[tuple[str, str, float, float, str | None]]:
        lat, lng = self._coord("h.data", "location.lat"), self._coord("h.data", "location.lng")
        return [(r[0], r[1], float(r[2]), float(r[3]), r[4]) for r in self.conn.execute(
            f"""SELECT h.id, h.grid_id, {lat}, {lng}, {self._jt('h.data', 'head_name')}
                FROM households h
                WHERE h.deleted = 0 AND h.grid_id IN {self._in_list()} AND {lat} IS NOT NULL AND {lng} IS NOT NULL
                ORDER BY h.id""", (dumps(list(grid_ids)),))]

    def open_matter_points(self, grid_ids: Iterable[str], keys: Iterable[str], ended: Sequence[str],
                           ) -> list[tuple[str, str, str, float | None, float | None, IdData]]:
        lat, lng = self._coord("h.data", "location.lat"), self._coord("h.data", "location.lng")
        return [(r[0], r[1], r[2], None if r[3] is None else float(r[3]), None if r[4] is None else float(r[4]),
                 (r[0], loads(r[5]))) for r in self.conn.execute(
            f"""SELECT m.id, h.id, h.grid_id, {lat}, {lng}, m.data
                FROM matters m JOIN households h ON h.id = m.household_id
                WHERE m.deleted = 0 AND h.deleted = 0 AND h.grid_id IN {self._in_list()}
                  AND coalesce(m.status, '') NOT IN ({','.join('?' * len(ended))}) AND {self._keys_meet('m')}
                ORDER BY m.id""", (dumps(list(grid_ids)), *ended, dumps(sorted(keys))))]

    def _visited_between(self, since: str, until: str) -> tuple[str, list[str]]:
        """Condition on visits ``v``: visited_at in [since, until) as instants. As ``visited_households``:
        the visited_at index narrows to the dates two days wider on each side, the time itself decides."""
        lo = (datetime.fromisoformat(since).astimezone(timezone.utc).date() - timedelta(days=2)).isoformat()
        hi = (datetime.fromisoformat(until).astimezone(timezone.utc).date() + timedelta(days=2)).isoformat()
        j = self._julian
        return (f"v.visited_at >= ? AND v.visited_at < ? AND {j('v.visited_at')} >= {j('?')} "
                f"AND {j('v.visited_at')} < {j('?')}", [lo, hi, since, until])

    def visit_points(self, grid_ids: Iterable[str], since: str, until: str
                     ) -> list[tuple[str, str, str, float | None, float | None]]:
        lat, lng = self._coord("v.data", "gps.lat"), self._coord("v.data", "gps.lng")
        when, args = self._visited_between(since, until)
        return [(r[0], r[1], r[2], None if r[3] is None else float(r[3]), None if r[4] is None else float(r[4]))
                for r in self.conn.execute(
            # CROSS JOIN: visits first (SQLite keeps the order), through the visited_at index; each one's
            # household by its id (the grid unindexed: probing households_grid_live for each of a county's
            # 1,700 areas per visit made the county's map 28 s)
            f"""SELECT v.id, h.id, h.grid_id, {lat}, {lng}
                FROM visits v CROSS JOIN households h
                WHERE h.id = v.household_id AND v.deleted = 0 AND h.deleted = 0
                  AND {self._unindexed('h.grid_id')} IN {self._in_list()} AND {when}
                ORDER BY v.id""", (dumps(list(grid_ids)), *args))]

    def open_matter_cells(self, grid_ids: Iterable[str], keys: Iterable[str], ended: Sequence[str]
                          ) -> list[tuple[str, int]]:
        return [(r[0], int(r[1])) for r in self.conn.execute(
            f"""SELECT h.grid_id, count(*) FROM matters m JOIN households h ON h.id = m.household_id
                WHERE m.deleted = 0 AND h.deleted = 0 AND h.grid_id IN {self._in_list()}
                  AND coalesce(m.status, '') NOT IN ({','.join('?' * len(ended))}) AND {self._keys_meet('m')}
                GROUP BY h.grid_id""", (dumps(list(grid_ids)), *ended, dumps(sorted(keys))))]

    def visited_cells(self, grid_ids: Iterable[str], since: str, until: str) -> list[tuple[str, int]]:
        when, args = self._visited_between(since, until)
        return [(r[0], int(r[1])) for r in self.conn.execute(
            f"""SELECT h.grid_id, count(DISTINCT h.id) FROM visits v CROSS JOIN households h
                WHERE h.id = v.household_id AND v.deleted = 0 AND h.deleted = 0
                  AND {self._unindexed('h.grid_id')} IN {self._in_list()} AND {when}
                GROUP BY h.grid_id""", (dumps(list(grid_ids)), *args))]

    def households_visited(self, grid_ids: Iterable[str], tag: str, since: str, until: str, limit: int,
                           offset: int = 0) -> tuple[list[IdData], int]:
        when, between = self._visited_between(since, until)
        where = ["h.deleted = 0", f"h.grid_id IN {self._in_list()}",
                 f"h.id IN (SELECT v.household_id FROM visits v WHERE v.deleted = 0 AND {when})"]
        args: list[Any] = [dumps(list(grid_ids)), *between]
        if tag:
            where.append(self._json_has("h.data", "tags"))
            args.append(tag)
        return self._households_page(where, args, limit, offset)

    def audit_entries(self, *, action: str = "", action_prefix: str = "", user_id: str = "",
                      user_ids: Sequence[str] | None = None, record_id: str = "", limit: int = 300,
                      at_from: str = "", at_before: str = "", offset: int = 0) -> list[AuditEntry]:
        where: list[str] = []
        args: list[Any] = []
        if at_from:
            where.append("a.at >= ?")
            args.append(at_from)
        if at_before:
            where.append("a.at < ?")
            args.append(at_before)
        if action:
            where.append("a.action = ?")
            args.append(action)
        if action_prefix:
            where.append(f"a.action {self._like} ?")
            args.append(action_prefix.replace("%", "") + "%")
        if user_id:
            where.append("a.user_id = ?")
            args.append(user_id)
        if user_ids is not None:
            where.append(f"a.user_id IN {self._in_list()}")
            args.append(dumps(list(user_ids)))
        if record_id:
            where.append("a.record_id = ?")
            args.append(record_id)
        sql = (f"SELECT a.at, a.user_id, {self._jt('u.data', 'username')}, a.action, a.collection, a.record_id, "
               "a.details FROM audit a LEFT JOIN users u ON u.id = a.user_id")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [AuditEntry(*r) for r in self.conn.execute(sql + " ORDER BY a.id DESC LIMIT ? OFFSET ?",
                                                          (*args, limit, max(0, offset)))]

    def audit_actions(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT action FROM audit ORDER BY action")]

    # -- login limiter (issue 13, item 3) -----------------------------------------------------
    # The login limiter's counters (``server/ratelimit.py``), shared by every worker process and
    # server on this database. Portable SQL only (plain placeholders, ON CONFLICT … DO UPDATE,
    # integer milliseconds for times): the PostgreSQL store reuses it. Writers call these inside
    # ``transaction()``.
    def login_failures(self, username: str, address: str, since_ms: int) -> tuple[int, int]:
        row = self.conn.execute("SELECT failures, last_ms FROM login_failures WHERE username = ? AND address = ? "
                                "AND last_ms >= ?", (username, address, since_ms)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def login_address_failures(self, address: str, since_ms: int) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(
            "SELECT at_ms FROM login_address_failures WHERE address = ? AND at_ms > ? ORDER BY at_ms",
            (address, since_ms))]

    def login_failed(self, username: str, address: str, at_ms: int, since_ms: int, slots: int) -> None:
        self.conn.execute(
            "INSERT INTO login_failures (username, address, failures, last_ms) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (username, address) DO UPDATE SET failures = CASE WHEN login_failures.last_ms < ? THEN 1 "
            "ELSE login_failures.failures + 1 END, last_ms = excluded.last_ms", (username, address, at_ms, since_ms))
        self.conn.execute("DELETE FROM login_address_failures WHERE address = ? AND slot >= ?", (address, slots))
        rows = self.conn.execute("SELECT slot, at_ms FROM login_address_failures WHERE address = ? "
                                 "ORDER BY at_ms, slot", (address,)).fetchall()
        used = {int(r[0]) for r in rows}
        free = [n for n in range(slots) if n not in used]
        slot = free[0] if free else int(rows[0][0])   # the ring is full: the oldest failure makes way
        self.conn.execute("INSERT INTO login_address_failures (address, slot, at_ms) VALUES (?, ?, ?) "
                          "ON CONFLICT (address, slot) DO UPDATE SET at_ms = excluded.at_ms", (address, slot, at_ms))

    def login_forget(self, username: str, address: str) -> None:
        self.conn.execute("DELETE FROM login_failures WHERE username = ? AND address = ?", (username, address))

    def login_expire(self, before_ms: int, keep: int) -> int:
        n: int = self.conn.execute("DELETE FROM login_failures WHERE last_ms < ?", (before_ms,)).rowcount
        n += self.conn.execute("DELETE FROM login_address_failures WHERE at_ms <= ?", (before_ms,)).rowcount
        # Still more than ``keep`` recent rows (a spray from many addresses): the oldest go.
        n += self.conn.execute(
            "DELETE FROM login_failures WHERE last_ms < (SELECT last_ms FROM login_failures "
            "ORDER BY last_ms DESC LIMIT 1 OFFSET ?)", (keep,)).rowcount
        n += self.conn.execute(
            "DELETE FROM login_address_failures WHERE at_ms < (SELECT at_ms FROM login_address_failures "
            "ORDER BY at_ms DESC LIMIT 1 OFFSET ?)", (keep,)).rowcount
        return n


@dataclass
class AreaTree:
    """The area tree in memory: paths, subtrees, villages. Small (thousands of nodes) and cached."""

    parent: dict[str, str | None] = field(default_factory=dict)
    level: dict[str, str] = field(default_factory=dict)
    mountain: dict[str, bool] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, rows: Iterable[tuple[str, str | None, str, bool, bool]]) -> "AreaTree":
        t = cls()
        for aid, parent, level, mountain, deleted in rows:
            if deleted:
                continue
            t.parent[aid] = parent
            t.level[aid] = level
            t.mountain[aid] = mountain
        for aid, parent in t.parent.items():
            if parent:
                t.children.setdefault(parent, []).append(aid)
        return t

    def __contains__(self, aid: object) -> bool:
        return aid in self.parent

    def path(self, aid: str | None) -> list[str]:
        """The area and its ancestors, nearest first."""
        out: list[str] = []
        while aid and aid in self.parent and aid not in out:
            out.append(aid)
            aid = self.parent[aid]
        return out

    def subtree(self, aid: str) -> list[str]:
        out, stack = [], [aid]
        while stack:
            a = stack.pop()
            if a in out:
                continue
            out.append(a)
            stack.extend(self.children.get(a, []))
        return out

    def roots(self) -> list[str]:
        return [a for a, p in self.parent.items() if not p or p not in self.parent]

    def village_of(self, aid: str) -> str | None:
        for a in self.path(aid):
            if self.level.get(a) in ("village", "community"):
                return a
        return None

    def is_mountain(self, aid: str) -> bool:
        return any(self.mountain.get(a) for a in self.path(aid))


def is_postgres(db: str) -> bool:
    """Whether ``db`` names a PostgreSQL database (a URL) rather than a SQLite file."""
    return db.startswith(("postgresql://", "postgres://"))


def open_store(db: str, *, readonly: bool = False, writer: bool = False) -> SQLiteStore:
    """The store for ``db``: a SQLite path, or a ``postgresql://`` URL (``sync.store_pg``; a
    ``PostgresStore`` is a ``SQLiteStore``: one class of queries, two dialects). ``writer``: the
    server's writing connection (a larger page cache)."""
    if is_postgres(db):
        from .store_pg import PostgresStore   # psycopg is imported only where PostgreSQL is used
        return PostgresStore(db, readonly=readonly, writer=writer)
    return SQLiteStore(db, readonly=readonly, writer=writer)
