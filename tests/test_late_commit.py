"""Two servers writing one database at once: a late commit is never skipped by a pull (issue 13).

A pull hands out changes with ``seq > cursor``. If two servers' transactions could take sequence
numbers N+1 and N+2 and commit in the other order, a phone pulling between the two commits would
get N+2, move its cursor past N+1, and never see the change that committed last. On PostgreSQL
every write transaction therefore locks the clock row first and holds it to its commit
(``sync/store_pg.py``); on SQLite there is one writer by construction (``BEGIN IMMEDIATE`` takes
the file's write lock). The same scenario runs on both backends (``tests/backend.py``):

- one "server" (a store of its own) opens a write transaction, pushes a household (it takes its
  sequence number) and holds the transaction open;
- a second server pushes another household: it waits (PostgreSQL: on the clock row's lock, seen
  in ``pg_stat_activity``; SQLite: on the write lock), bounded by a timeout;
- meanwhile pulls (and a phone polling all along, from its own cursor, on a third connection)
  see neither, and their cursors stay below the first's version;
- the first commits, then the second: versions are in commit order, and every cursor handed out
  on the way — the poller's included — delivers the first household, never the second alone.

And a household moving between counties through the two servers keeps strictly increasing
versions, while both counties' phones see it leave and enter.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from sync import accounts, cursor as cursors, engine
from sync.protocol import Change, PushResult
from sync.store import SQLiteStore, open_store

from . import backend
from .conftest import PASSWORD, Town, _actor, new_id, password_hash

WAIT = 1.0        # how long the second writer must be seen waiting
TIMEOUT = 30.0    # bound on every wait of the test


def push_via(store: SQLiteStore, town: Town, who: str, *mutations: dict[str, Any]) -> list[PushResult]:
    """A push as one server handles it: the engine on that server's store."""
    body = json.dumps({"protocol": 1, "mutations": list(mutations)}).encode()
    return engine.push(store, town.actors[who], body).results


def pull_from(store: SQLiteStore, town: Town, who: str, cursor: str | None) -> tuple[list[Change], str]:
    """Every page from ``cursor`` on: the changes in order and the last cursor."""
    changes: list[Change] = []
    while True:
        page = engine.pull(store, town.actors[who], cursor, 500)
        changes += page.changes
        cursor = page.cursor
        if not page.more:
            return changes, cursor


def position(store: SQLiteStore, cursor: str) -> int:
    """The sequence number a cursor stands at."""
    return cursors.decode(cursor, store.get_meta("secret") or "").seq


@pytest.fixture
def servers(db: str, town: Town) -> Iterator[tuple[SQLiteStore, SQLiteStore]]:
    """Two writer stores on the town's database, as two server processes have (the town's own
    store is a third connection, the pulls')."""
    a, b = open_store(db), open_store(db)
    if backend.POSTGRES:
        for s in (a, b):
            s.conn.execute(f"SET lock_timeout = '{int(TIMEOUT * 1000)}ms'")   # a lost wait fails, never hangs
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@contextlib.contextmanager
def held_open(store: SQLiteStore, work: Callable[[], Any]) -> Iterator[dict[str, Any]]:
    """Run ``work`` in a write transaction of ``store`` on a thread of its own, and hold that
    transaction open, uncommitted, for the ``with`` block (``out["result"]`` is what work gave);
    it commits as the block ends (``out["committed"]``: when)."""
    out: dict[str, Any] = {}
    held, release = threading.Event(), threading.Event()

    def run() -> None:
        try:
            with store.transaction():
                out["result"] = work()
                held.set()
                if not release.wait(TIMEOUT):
                    raise AssertionError("never released")
            out["committed"] = time.monotonic()
        except BaseException as e:   # noqa: BLE001 - raised in the test's thread below
            out["error"] = e
            held.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        assert held.wait(TIMEOUT) and "error" not in out, out
        yield out
    finally:
        release.set()
        t.join(TIMEOUT)
    assert not t.is_alive() and "error" not in out, out


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """``work`` started on a thread of its own: the thread, and ``result`` (or ``error``) and
    ``committed`` (when it returned) once it has run."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = work()
            out["committed"] = time.monotonic()
        except BaseException as e:   # noqa: BLE001
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def waiting_on_a_lock(store: SQLiteStore) -> int:
    """PostgreSQL: how many backends of this database are waiting for a lock."""
    return int(store.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND wait_event_type = 'Lock'").fetchone()[0])


def test_a_second_server_waits_for_an_open_write_and_no_pull_skips_the_late_commit(
        db: str, town: Town, servers: tuple[SQLiteStore, SQLiteStore]) -> None:
    a, b = servers
    reader = town.store
    _, cursor0 = pull_from(reader, town, "w1", None)
    head0 = reader.current_seq()
    h1, h2 = new_id(), new_id()

    # A phone pulling all along on a connection of its own, from its own cursor, as phones do.
    poll_stop = threading.Event()
    poller_store = open_store(db)
    polled: list[tuple[str, str, int | None]] = []   # (collection, id, version) in delivery order
    poll_errors: list[BaseException] = []

    def poll() -> None:
        cursor = cursor0
        try:
            while True:
                stopping = poll_stop.is_set()
                changes, cursor = pull_from(poller_store, town, "w1", cursor)
                polled.extend((c.collection, c.id, c.version) for c in changes)
                if stopping:
                    return
                time.sleep(0.005)
        except BaseException as e:   # noqa: BLE001 - shown by the test
            poll_errors.append(e)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        with held_open(a, lambda: push_via(a, town, "w1", town.mut("households", h1, {
                "grid_id": town.ids["g1"], "address": "杖锡村上岙1号", "head_name": "王阿公"}))) as first:
            v1 = first["result"][0].version
            assert first["result"][0].status == "applied" and v1 == head0 + 1, first
            # a pull meanwhile: the uncommitted household is not there, and the cursor stays before it
            changes, c_during = pull_from(reader, town, "w1", cursor0)
            assert ("households", h1) not in {(c.collection, c.id) for c in changes}
            assert position(reader, c_during) < v1

            t2, second = in_thread(lambda: push_via(b, town, "w2", town.mut("households", h2, {
                "grid_id": town.ids["g1"], "address": "杖锡村上岙2号", "head_name": "李大伯"})))
            time.sleep(WAIT)
            assert t2.is_alive() and not second, f"the second server's write did not wait for the first: {second}"
            if backend.POSTGRES:
                assert waiting_on_a_lock(reader) >= 1, "the second server waits on the clock row's lock"
            changes, c_waiting = pull_from(reader, town, "w1", c_during)
            assert not {("households", h1), ("households", h2)} & {(c.collection, c.id) for c in changes}
            assert position(reader, c_waiting) < v1
        t2.join(TIMEOUT)
    finally:
        poll_stop.set()
        poller.join(TIMEOUT)
        poller_store.close()
    assert not t2.is_alive() and not poller.is_alive()
    assert "error" not in second and not poll_errors, (second, poll_errors)

    # versions are in commit order: the first committed first and holds the lower version
    v2 = second["result"][0].version
    assert second["result"][0].status == "applied" and v1 < v2, (v1, v2)
    assert first["committed"] <= second["committed"]
    assert reader.get("households", h1).version == v1 and reader.get("households", h2).version == v2  # type: ignore[union-attr]
    # every cursor handed out on the way delivers the first household (and the second)
    for c in (cursor0, c_during, c_waiting):
        got = {(ch.collection, ch.id): ch.version for ch in pull_from(reader, town, "w1", c)[0]}
        assert got.get(("households", h1)) == v1 and got.get(("households", h2)) == v2, (position(reader, c), got)
    # the phone that pulled all along got the first no later than the second, each once
    mine = [(coll, rid, v) for coll, rid, v in polled if coll == "households" and rid in (h1, h2)]
    assert mine == [("households", h1, v1), ("households", h2, v2)], mine
    # and from the cursor after the second change there is nothing left to skip: the first came before it
    _, c_end = pull_from(reader, town, "w1", cursor0)
    assert position(reader, c_end) >= v2
    assert not pull_from(reader, town, "w1", c_end)[0]


# -- a household moving between counties ----------------------------------------------------------------------

def second_county(town: Town, a: SQLiteStore) -> None:
    """County 鄞州区 > town 章水镇 is 海曙区's; this one: 鄞州区 > 姜山镇 > 走马塘村 > grid g4, pushed
    by the admin through server A; worker4 (grid g4) and staff2 (姜山镇) sign in."""
    ids = town.ids
    for k in ("county2", "town2", "v3", "g4"):
        ids[k] = new_id()
    rows = [("county2", None, "county", "鄞州区"), ("town2", "county2", "town", "姜山镇"),
            ("v3", "town2", "village", "走马塘村"), ("g4", "v3", "grid", "走马塘村网格")]
    results = push_via(a, town, "admin", *[town.mut("areas", ids[k], {
        "level": lvl, "name": name, **({"parent_id": ids[p]} if p else {})}) for k, p, lvl, name in rows])
    assert all(r.status == "applied" for r in results), results
    for key, username, role, area in (("w4", "worker4", "grid_worker", "g4"), ("staff2", "staff2", "staff", "town2")):
        accounts.create_user(town.store, username, PASSWORD, role, [ids[area]], password_hash=password_hash())
        town.actors[key] = _actor(town.store, username, town, key)


def test_a_household_moving_between_counties_through_two_servers_keeps_increasing_versions(
        town: Town, servers: tuple[SQLiteStore, SQLiteStore]) -> None:
    a, b = servers
    second_county(town, a)
    county1, county2 = ("w1", "staff"), ("w4", "staff2")
    cursors_of: dict[str, str | None] = {who: pull_from(b, town, who, None)[1] for who in county1 + county2}
    hid = new_id()
    versions: list[int] = []
    turn = [0]

    def pulled() -> dict[str, list[Change]]:
        """Each phone pulls from its cursor, through server A and B in turn; H's changes per phone."""
        out = {}
        for who in county1 + county2:
            via = (a, b)[turn[0] % 2]
            turn[0] += 1
            changes, cursors_of[who] = pull_from(via, town, who, cursors_of[who])
            out[who] = [c for c in changes if (c.collection, c.id) == ("households", hid)]
        return out

    def step(via: SQLiteStore, who: str, fields: dict[str, Any], status: tuple[str, ...] = ("applied",)) -> int:
        base = versions[-1] if versions else 0
        r = push_via(via, town, who, town.mut("households", hid, fields, base=base))[0]
        assert r.status in status and r.version, r
        assert not versions or r.version > versions[-1], f"version {r.version} after {versions}"
        versions.append(r.version)
        return r.version

    def seen_in(where: tuple[str, ...], got: dict[str, list[Change]], version: int) -> None:
        for who in where:
            assert [(c.removed, c.version) for c in got[who]] == [(None, version)], (who, got[who])

    def left(where: tuple[str, ...], got: dict[str, list[Change]]) -> None:
        for who in where:
            assert [c.removed for c in got[who]] == [True], (who, got[who])

    def unseen(where: tuple[str, ...], got: dict[str, list[Change]]) -> None:
        for who in where:
            assert got[who] == [], (who, got[who])

    v = step(a, "w1", {"grid_id": town.ids["g1"], "address": "杖锡村上岙12号", "head_name": "王阿公"})
    got = pulled()
    seen_in(county1, got, v)
    unseen(county2, got)
    v = step(b, "w1", {"members_count": 4})
    seen_in(county1, pulled(), v)

    # the move (admin, through B) while worker1's edit holds a transaction open on A: B waits, then
    # merges over the edit it had not seen; the versions follow the commits
    base = versions[-1]
    with held_open(a, lambda: push_via(a, town, "w1", town.mut("households", hid, {"phone": "13800000001"},
                                                               base=base))[0]) as edit:
        tb, move = in_thread(lambda: push_via(b, town, "admin", town.mut("households", hid, {"grid_id": town.ids["g4"]},
                                                                          base=base))[0])
        time.sleep(WAIT / 2)
        assert tb.is_alive() and not move, f"the move did not wait for the open edit: {move}"
    tb.join(TIMEOUT)
    assert not tb.is_alive() and "error" not in move, move
    edit_v, move_v = edit["result"].version, move["result"].version
    assert edit["result"].status == "applied" and move["result"].status in ("applied", "merged"), (edit, move)
    assert versions[-1] < edit_v < move_v, (versions, edit, move)
    versions += [edit_v, move_v]
    got = pulled()
    left(county1, got)                  # it left 海曙区: the phones there drop it …
    seen_in(county2, got, versions[-1])  # … and it arrives in 鄞州区, worker1's phone number with it
    rec = town.store.get("households", hid)
    assert rec is not None and rec.data["grid_id"] == town.ids["g4"] and rec.data["phone"] == "13800000001"

    # worker4 edits it in the new county (A), the admin moves it back (B), worker1 edits it again (A)
    v = step(a, "w4", {"members_count": 5})
    got = pulled()
    seen_in(county2, got, v)
    unseen(county1, got)
    v = step(b, "admin", {"grid_id": town.ids["g1"]})
    got = pulled()
    seen_in(county1, got, v)
    left(county2, got)
    v = step(a, "w1", {"notes": "回到杖锡村"})
    got = pulled()
    seen_in(county1, got, v)
    unseen(county2, got)
    assert versions == sorted(set(versions)), versions
    assert town.store.get("households", hid).version == versions[-1]  # type: ignore[union-attr]
