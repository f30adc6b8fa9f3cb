"""Several worker processes on one port and one database (``gridbook serve --workers 2``, issue 13).

A real server process with two uvicorn workers runs on a temporary database (the conftest town).
The test tells which worker serves a connection without asking the server anything new: it finds
the server's end of the TCP connection in ``/proc/net/tcp`` and the worker process holding that
socket in ``/proc/<pid>/fd`` (the listening socket is shared; an accepted one belongs to one
process). Keep-alive connections stay with the worker that accepted them, so the test opens
connections until it holds one to each worker, then sends its requests over those:

- pushes from many devices and threads through both workers all land exactly once (the database
  and a pull through each worker agree; a re-push through the other worker answers as recorded);
- the login limit holds across workers: failures alternated between the two count together;
- a worker killed with SIGKILL: the other keeps serving at once, and uvicorn starts a replacement.

Linux only (``/proc``); 127.0.0.1 only; the server's log is shown when something fails.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from sync import accounts
from sync.store import SQLiteStore

from .conftest import PASSWORD, build_town
from .serverproc import Server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to tell workers apart")]

DEVICES = 8          # phones pushing at once, spread over both workers
PUSHES = 12          # pushes per phone
PER_PUSH = 10        # households per push


def worker_pids(parent: int) -> set[int]:
    """uvicorn's worker processes: the server process's children started by multiprocessing."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:   # not multiprocessing's resource tracker
            out.add(int(entry))
    return out


def serving_pid(conn: http.client.HTTPConnection, server_port: int, pids: set[int]) -> int:
    """The worker holding the server's end of this (open) connection."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == local and f[2] == remote:
            inode = f[9]
    assert inode, "the server's end of the connection is not in /proc/net/tcp"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    raise AssertionError(f"no worker of {pids} holds socket {inode}")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None,
            token: str | None = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, "/api/v1" + path, body=None if body is None else json.dumps(body).encode(), headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(data) if data else None


class Workers:
    def __init__(self, server: Server, tokens: dict[str, str], town_ids: dict[str, str]) -> None:
        self.server, self.tokens, self.ids = server, tokens, town_ids
        assert server.proc is not None
        self.parent = server.proc.pid

    def pids(self) -> set[int]:
        return worker_pids(self.parent)

    def connection_to_each(self, tries: int = 200) -> dict[int, list[http.client.HTTPConnection]]:
        """Keep-alive connections, at least one to each worker (the kernel picks who accepts)."""
        pids = self.pids()
        assert len(pids) == 2, pids
        by_pid: dict[int, list[http.client.HTTPConnection]] = {p: [] for p in pids}
        try:
            for _ in range(tries):
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
                by_pid[next(iter(pids))].append(conn)   # closed below if anything fails
                assert request(conn, "GET", "/health")[0] == 200
                pid = serving_pid(conn, self.server.port, pids)
                by_pid[next(iter(pids))].remove(conn)
                by_pid[pid].append(conn)
                if all(len(c) >= 2 for c in by_pid.values()):
                    break
            assert all(by_pid.values()), f"all connections went to one worker: { {p: len(c) for p, c in by_pid.items()} }"
        except BaseException:
            close(by_pid)
            raise
        return by_pid


def close(by_pid: dict[int, list[http.client.HTTPConnection]]) -> None:
    for conns in by_pid.values():
        for c in conns:
            c.close()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    tmp = tmp_path_factory.mktemp("workers")
    db = tmp / "gridbook.db"
    store = SQLiteStore(str(db))
    store.migrate()
    town = build_town(store)
    tokens = {"w2": town.tokens["w2"], "staff": town.tokens["staff"]}
    w1 = store.user_by_username("worker1")
    assert w1 is not None
    for i in range(DEVICES):
        tokens[f"phone{i}"] = accounts.register_device(store, w1, f"phone {i}").token
    ids = dict(town.ids)
    store.close()
    server = Server(db, tmp / "server.log", args=["--workers", "2"])
    try:
        server.start()
        yield Workers(server, tokens, ids)
    except BaseException:
        print(server.log())
        raise
    finally:
        parent = server.proc.pid if server.proc is not None else None
        left = worker_pids(parent) if parent else set()
        server.stop()
        for pid in left:   # the parent stops its workers; should it not have, they go too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def households(grid: str, n: int) -> list[dict[str, Any]]:
    return [{"mid": str(uuid.uuid4()), "collection": "households", "id": str(uuid.uuid4()), "op": "upsert",
             "base": 0, "at": "2026-11-20T09:00:00+08:00",
             "fields": {"grid_id": grid, "address": f"杖锡村上岙{i}号", "head_name": "王阿公"}} for i in range(n)]


def test_pushes_through_both_workers_land_exactly_once(workers: Workers) -> None:
    by_pid = workers.connection_to_each()
    try:
        pushes_land_exactly_once(workers, by_pid)
    finally:
        close(by_pid)


def pushes_land_exactly_once(workers: Workers, by_pid: dict[int, list[http.client.HTTPConnection]]) -> None:
    # interleaved by worker: the kernel may have given one worker many more connections than phones
    conns = [c for group in itertools.zip_longest(*by_pid.values()) for c in group if c is not None]
    pid_of = {id(c): p for p, cs in by_pid.items() for c in cs}
    sent: dict[str, list[list[dict[str, Any]]]] = {}
    answers: dict[str, list[Any]] = {}
    errors: list[str] = []
    served: list[int] = []

    def phone(i: int) -> None:
        name = f"phone{i}"
        conn = conns[i % len(conns)]   # phones share connections, so both workers take their pushes
        served.append(pid_of[id(conn)])
        sent[name], answers[name] = [], []
        try:
            for _ in range(PUSHES):
                batch = households(workers.ids["g1"], PER_PUSH)
                sent[name].append(batch)
                with locks[id(conn)]:
                    status, _, body = request(conn, "POST", "/sync/push", {"protocol": 1, "mutations": batch},
                                              workers.tokens[name])
                if status != 200:
                    errors.append(f"{name}: {status} {body}")
                    return
                answers[name].append(body["results"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{name}: {e!r}")

    locks = {id(c): threading.Lock() for c in conns}
    threads = [threading.Thread(target=phone, args=(i,)) for i in range(DEVICES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert set(served) == set(by_pid), "both workers took pushes"
    for name, batches in sent.items():
        for batch, results in zip(batches, answers[name]):
            assert [r["mid"] for r in results] == [m["mid"] for m in batch]
            assert all(r["status"] == "applied" for r in results), results[:2]
    expected = {m["id"] for batches in sent.values() for b in batches for m in b}
    assert len(expected) == DEVICES * PUSHES * PER_PUSH
    with contextlib.closing(sqlite3.connect(f"file:{workers.server.db}?mode=ro", uri=True)) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM households")]
        logged = db.execute("SELECT count(*), count(DISTINCT mid) FROM mutation_log").fetchone()
        versions = [r[0] for r in db.execute("SELECT version FROM households")]
    assert expected <= set(ids) and len(ids) == len(set(ids))
    assert logged[0] == logged[1], "a mutation logged twice"
    assert len(versions) == len(set(versions)), "two changes got the same version from two workers"
    # A pull through each worker sees every household; a re-push through the other worker is
    # answered from the log, not applied again.
    for pid, cs in by_pid.items():
        seen: set[str] = set()
        cursor = ""
        while True:
            status, _, page = request(cs[0], "GET", f"/sync/pull?limit=1000&cursor={cursor}", token=workers.tokens["w2"])
            assert status == 200, page
            seen |= {c["id"] for c in page["changes"] if c["collection"] == "households"}
            cursor = page["cursor"]
            if not page["more"]:
                break
        assert expected <= seen, f"worker {pid}: {len(expected - seen)} households missing from the pull"
    first = sent["phone0"][0]
    other = next(cs[0] for p, cs in by_pid.items() if p != pid_of[id(conns[0])])   # phone0 pushed on conns[0]
    status, _, body = request(other, "POST", "/sync/push", {"protocol": 1, "mutations": first},
                              workers.tokens["phone0"])
    assert status == 200 and body["results"] == answers["phone0"][0]


def test_the_login_limit_holds_across_workers(workers: Workers) -> None:
    by_pid = workers.connection_to_each()
    try:
        login_limit_holds(by_pid)
    finally:
        close(by_pid)


def login_limit_holds(by_pid: dict[int, list[http.client.HTTPConnection]]) -> None:
    a, b = (cs[0] for cs in by_pid.values())
    statuses = []
    for i in range(7):   # alternately through each worker
        status, headers, body = request((a, b)[i % 2], "POST", "/auth/login",
                                        {"username": "worker2", "password": "wrong guess"})
        statuses.append(status)
    # Each worker alone saw 3 failures at most (a limiter of its own would let 5 through); together
    # they saw 5, and the next attempt, on either, waits.
    assert statuses == [401] * 5 + [429, 429], statuses
    for conn in (a, b):   # both workers make the right password wait too
        status, headers, body = request(conn, "POST", "/auth/login", {"username": "worker2", "password": PASSWORD})
        assert status == 429 and int(headers["retry-after"]) >= 1, (status, body)


def test_a_worker_killed_with_sigkill_is_replaced_and_the_other_serves_meanwhile(workers: Workers) -> None:
    by_pid = workers.connection_to_each()
    victim, survivor = list(by_pid)
    survivor_conn = by_pid[survivor][0]
    close({victim: by_pid[victim], survivor: by_pid[survivor][1:]})
    os.kill(victim, signal.SIGKILL)
    # The survivor serves at once, on its connection and on new ones.
    with contextlib.closing(survivor_conn):
        status, _, body = request(survivor_conn, "POST", "/sync/push",
                                  {"protocol": 1, "mutations": households(workers.ids["g1"], 3)}, workers.tokens["w2"])
    assert status == 200 and all(r["status"] == "applied" for r in body["results"]), body
    for _ in range(10):
        with contextlib.closing(http.client.HTTPConnection("127.0.0.1", workers.server.port, timeout=30)) as conn:
            assert request(conn, "GET", "/sync/pull?limit=1", token=workers.tokens["w2"])[0] == 200
    # uvicorn's supervisor notices the death (it checks twice a second) and starts another worker.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = workers.pids()
        if len(pids) == 2 and victim not in pids:
            break
        time.sleep(0.2)
    assert len(pids) == 2 and victim not in pids and survivor in pids, pids
    replacement = (pids - {survivor}).pop()
    # ... which serves too, once it has started.
    deadline = time.monotonic() + 30
    while True:
        try:
            by_pid = workers.connection_to_each(tries=50)
            break
        except AssertionError:   # not serving yet: every connection went to the survivor
            assert time.monotonic() < deadline, "the replacement never accepted a connection"
            time.sleep(0.2)
    try:
        assert set(by_pid) == {survivor, replacement}
        status, _, body = request(by_pid[replacement][0], "GET", "/sync/pull?limit=1", token=workers.tokens["w2"])
        assert status == 200, body
    finally:
        close(by_pid)
