"""Crash safety of push against a real server process (protocol §4 "Atomic batch", "Exactly once").

A real ``python -m server serve`` runs on a temporary database of the backend under test
(``tests/backend.py``: a SQLite file or a PostgreSQL database; the conftest town). Two phones
push a large batch each at the same time (500 mutations: 250 households, each with a resident);
the test watches the database for a push's write transaction (a probe connection that cannot
take the write lock — on PostgreSQL, the clock row that every write transaction locks first)
and SIGKILLs the server at several moments after it opened (fractions of the time the two batches
take, measured first): early in the first batch, near its commit, inside the second, after both
answered. Then, reading the database directly (on PostgreSQL once the dead server's backend has
let go of the clock row: its transaction ends with its client): each batch is whole (every
mutation has its ``mutation_log`` row and its record) or absent, a batch whose answer arrived is
whole, the clock is ahead of every version and feed row, and on SQLite ``PRAGMA integrity_check``
passes (on PostgreSQL the server is killed, not the database: its recovery is not under test).
The server is restarted on the same database and the phones re-push the same batches (same mids): every mid gets
exactly one result, each record exists once, and pushing again gives identical results. At least
one kill must have landed inside a transaction (lock held, no answer, nothing applied). The
server's log is shown when anything fails; the child is always stopped.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import backend
from .conftest import build_town
from .serverproc import Server
from sync.schema import COLLECTIONS
from sync.store import is_postgres, open_store

# A console key for the servers (and apps) these tests start. On PostgreSQL the key file and
# the blobs would otherwise go beside the working tree (data/<database>.key: server/settings.py).
SECRET_KEY = "crash-and-fault-tests-" + "k" * 32


def server_env(tmp_path: Path) -> dict[str, str]:
    """The settings of a test's server process: the key, and blobs in the test's directory."""
    return {"GRIDBOOK_SECRET_KEY": SECRET_KEY, "GRIDBOOK_BLOB_DIR": str(tmp_path / "blobs")}

BATCH = 500
# When to SIGKILL, once a push's write transaction is seen open: fractions of the time the two
# phones' batches take together on this machine and backend, measured first (two batches pushed at
# once, no kill). A batch took about 70 ms on SQLite on a quiet machine, several times that on a
# busy one and more on PostgreSQL (a statement is a round trip to the database); fixed delays put
# every kill inside the first batch there. So the kills land early in the first, near its commit,
# in the second, and (None) once both answers have arrived: the "re-push after a dropped
# connection" case, of pushes committed.
KILL_AT = (0.0, 0.05, 0.2, 0.4, 0.55, 0.7, 0.9, None)


def push(url: str, token: str, mutations: list[dict[str, Any]], timeout: float = 60) -> dict[str, Any]:
    body = json.dumps({"protocol": 1, "mutations": mutations}).encode()
    req = urllib.request.Request(f"{url}/api/v1/sync/push", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        assert r.status == 200
        return json.loads(r.read())  # type: ignore[no-any-return]


def make_batch(grid: str, n: int = BATCH) -> list[dict[str, Any]]:
    """n/2 households, each followed by a resident of it (the resident depends on the household)."""
    out: list[dict[str, Any]] = []
    for i in range(n // 2):
        hid, rid = str(uuid.uuid4()), str(uuid.uuid4())
        at = f"2026-11-20T09:{i // 60 % 60:02d}:{i % 60:02d}+08:00"
        out.append({"mid": str(uuid.uuid4()), "collection": "households", "id": hid, "op": "upsert", "base": 0,
                    "fields": {"grid_id": grid, "address": f"杖锡村上岙{i}号", "head_name": "王阿公",
                               "phone": "13800000000", "members_count": 3, "tags": ["独居老人"],
                               "notes": "备注" * 20}, "at": at})
        out.append({"mid": str(uuid.uuid4()), "collection": "residents", "id": rid, "op": "upsert", "base": 0,
                    "fields": {"household_id": hid, "name": "王小明", "residence": "resident"}, "at": at})
    return out


def connect_ro(db: str | Path) -> Any:
    """A connection that reads the database straight: a read-only SQLite connection, or on
    PostgreSQL the store's connection (it takes the same ``?`` placeholders)."""
    if is_postgres(str(db)):
        return open_store(str(db)).conn
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def count(db: str | Path, sql: str, *params: Any) -> int:
    """The one number a query gives, read straight from the database."""
    conn = connect_ro(db)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def write_locked(db: str | Path) -> bool:
    """Whether some connection holds the write lock: SQLite's (the push's BEGIN IMMEDIATE
    transaction), or on PostgreSQL the clock row every write transaction locks first."""
    if is_postgres(str(db)):
        import psycopg
        with psycopg.connect(str(db), autocommit=True) as pg:
            try:
                with pg.transaction():
                    pg.execute("SELECT value FROM counters WHERE name = 'seq' FOR UPDATE NOWAIT")
                return False
            except psycopg.errors.LockNotAvailable:
                return True
    conn = sqlite3.connect(str(db), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            return True
        raise
    finally:
        conn.close()


def settled(db: str | Path, timeout: float = 30) -> None:
    """Wait until no write transaction is left in flight (on PostgreSQL a killed server's lives on
    in its backend until the backend finds its client gone; a SQLite writer dies with its process)."""
    if not is_postgres(str(db)):
        return
    import psycopg
    with psycopg.connect(str(db), autocommit=True) as pg:
        pg.execute(f"SET lock_timeout = '{int(timeout * 1000)}ms'")
        with pg.transaction():
            pg.execute("SELECT value FROM counters WHERE name = 'seq' FOR UPDATE")


def batch_state(db: str | Path, user_id: str, batch: list[dict[str, Any]]) -> dict[str, int]:
    """How much of the batch is in the database, read straight from the file."""
    mids = [m["mid"] for m in batch]
    hids = [m["id"] for m in batch if m["collection"] == "households"]
    rids = [m["id"] for m in batch if m["collection"] == "residents"]
    conn = connect_ro(db)
    try:
        def count(sql: str, ids: list[str], *extra: str) -> int:
            q = ",".join("?" * len(ids))
            return int(conn.execute(sql.format(q=q), (*extra, *ids)).fetchone()[0])
        return {"log": count("SELECT count(*) FROM mutation_log WHERE user_id = ? AND mid IN ({q})", mids, user_id),
                "households": count("SELECT count(*) FROM households WHERE id IN ({q})", hids),
                "residents": count("SELECT count(*) FROM residents WHERE id IN ({q})", rids),
                "feed": count("SELECT count(DISTINCT id) FROM feed WHERE collection = 'households' AND id IN ({q})",
                              hids)}
    finally:
        conn.close()


def integrity(db: str | Path) -> str:
    """``ok``, or what is wrong: SQLite's ``PRAGMA integrity_check`` (PostgreSQL's recovery is its
    own), and on both backends the clock ahead of every version and every feed row (a number
    handed out twice would be a version a phone could skip)."""
    conn = connect_ro(db)
    try:
        if not is_postgres(str(db)):
            check = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
            if check != "ok":
                return check
        clock = int(conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0])
        top = max(int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {c}").fetchone()[0]) for c in COLLECTIONS)
        feed = int(conn.execute("SELECT coalesce(max(seq), 0) FROM feed").fetchone()[0])
        if max(top, feed) > clock:
            return f"the clock ({clock}) is behind a version ({top}) or a feed row ({feed})"
        return "ok"
    finally:
        conn.close()


@pytest.fixture
def prepared(tmp_path: Path) -> Iterator[tuple[str, dict[str, tuple[str, str]], str]]:
    """A database with the conftest town, closed; for w1 and w2: (token, user id); and grid g1."""
    db = backend.new_db(tmp_path)
    store = open_store(db)
    store.migrate()
    town = build_town(store)
    users = {name: (town.tokens[name], town.actors[name].user_id) for name in ("w1", "w2")}
    grid = town.ids["g1"]
    store.close()
    yield db, users, grid


@pytest.mark.slow
def test_kill_9_during_a_push_leaves_all_or_nothing_and_a_re_push_converges(
        prepared: tuple[str, dict[str, tuple[str, str]], str], tmp_path: Path) -> None:
    db, users, grid = prepared
    server = Server(db, tmp_path / "server.log", server_env(tmp_path))
    full = {"log": BATCH, "households": BATCH // 2, "residents": BATCH // 2, "feed": BATCH // 2}
    none = {k: 0 for k in full}
    outcomes: list[dict[str, Any]] = []
    both = 0.0

    def push_both() -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], list[threading.Thread]]:
        """Two phones push a large batch each at the same time (the server applies one after the other)."""
        batches = {name: make_batch(grid) for name in users}
        answers: dict[str, dict[str, Any]] = {name: {} for name in users}
        threads = []
        for name, (token, _) in users.items():
            def send(url: str = server.url, token: str = token, b: list[dict[str, Any]] = batches[name],
                     out: dict[str, Any] = answers[name]) -> None:
                try:
                    out["response"] = push(url, token, b)
                except (urllib.error.URLError, ConnectionError, OSError) as e:
                    out["error"] = repr(e)
            threads.append(threading.Thread(target=send, daemon=True))
        for t in threads:
            t.start()
        return batches, answers, threads

    try:
        server.start()
        t0 = time.monotonic()
        _, answers, threads = push_both()
        for t in threads:
            t.join(timeout=120)
        both = time.monotonic() - t0   # the two batches, applied one after the other, no kill
        assert all("response" in a for a in answers.values()), answers
        for at in KILL_AT:
            delay = round(at * both, 3) if at is not None else "after both answers"
            batches, answers, threads = push_both()
            # wait for the first push's write transaction, then kill the server inside (or after) it
            deadline = time.monotonic() + 20
            while not write_locked(db):
                assert time.monotonic() < deadline, "the push never started a write transaction"
                if all("response" in a or "error" in a for a in answers.values()):
                    raise AssertionError(f"the pushes ended before a write transaction was seen: {answers}")
                time.sleep(0.0005)
            if at is None:
                for t in threads:
                    t.join(timeout=120)
            else:
                time.sleep(at * both)
            locked_at_kill = write_locked(db)
            server.kill9()
            for t in threads:
                t.join(timeout=30)
                assert not t.is_alive()
            settled(db)
            # read the database as the crash left it: it is sound and holds every batch whole or not at all
            assert integrity(db) == "ok", "the database is damaged after kill -9"
            outcome: dict[str, Any] = {"delay": delay, "locked_at_kill": locked_at_kill}
            for name, (_, user_id) in users.items():
                state = batch_state(db, user_id, batches[name])
                assert state in (full, none), f"kill -9 after {delay}s left part of {name}'s batch: {state}"
                answered = "response" in answers[name]
                if answered:
                    assert state == full, "the server answered, so the batch must have been committed"
                outcome[name] = ("answered" if answered else "no answer") + (", applied" if state == full else
                                                                            ", not applied")
            outcomes.append(outcome)

            # the phones never got (or never trusted) an answer: they push the same batches again
            server.start()
            for name, (token, user_id) in users.items():
                batch = batches[name]
                first = push(server.url, token, batch)["results"]
                assert [r["mid"] for r in first] == [m["mid"] for m in batch], "one result per mutation, in order"
                assert all(r["status"] == "applied" and r["version"] for r in first), \
                    [r for r in first if r["status"] != "applied"][:3]
                if "response" in answers[name]:
                    assert first == answers[name]["response"]["results"], "a re-push answers as recorded"
                again = push(server.url, token, batch)["results"]
                assert again == first, "pushing the same batch again must give identical results"
                assert batch_state(db, user_id, batch) == full, "each record exists exactly once after re-push"

        print(f"kill outcomes (two batches: {both:.2f} s):", outcomes)   # shown with pytest -rP
        # at least one kill landed inside a push's transaction: lock held, no answer, nothing of it applied
        assert any(o["locked_at_kill"] and any(o[n] == "no answer, not applied" for n in users) for o in outcomes), \
            f"no kill landed mid-transaction: {outcomes}"
        server.stop()
        assert integrity(db) == "ok"
        assert count(db, "SELECT count(*) FROM (SELECT 1 FROM mutation_log GROUP BY user_id, mid "
                         "HAVING count(*) > 1) AS twice") == 0
        n = count(db, "SELECT count(*) FROM households")
        assert n == (len(KILL_AT) + 1) * len(users) * BATCH // 2, "every batch's households, once"
        # the kills fell on both sides of the commits: inside a transaction (above) and after both answers
        assert any(all(o[n_] == "answered, applied" for n_ in users) for o in outcomes), outcomes
    except AssertionError as e:
        raise AssertionError(f"{e}\noutcomes: {outcomes}\n--- server log ---\n{server.log()}") from None
    finally:
        server.stop()
