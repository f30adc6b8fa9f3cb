"""Fault injection against a real server process (bench/faults; docs/reliability.md).

First, each fault of the proxy does what it says, seen from both ends: a dropped or cut
request applies nothing, a dropped or cut answer was applied all the same, a duplicated
delivery is applied once and answered alike, a kill -9 leaves the batch whole or absent; the
phone re-sends every lost batch under the same mids and each is applied exactly once.

Then the short version of the harness: a few hundred seeded runs (phones with random offline
edits syncing through the faulty proxy, the server killed now and then), each checked by the
convergence test's model and oracle; none may fail, lose or duplicate anything. The long
version is ``make faults`` (``python -m bench.faults --runs 10000``).
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator

import pytest

from bench.faults.harness import FAULTS, Figures, Harness
from bench.faults.proxy import Fault, FaultProxy

from .conftest import Town, build_town
from .serverproc import Server
from .simclient import HttpTransport, Ids, LostResponse, SimClient
from .test_crash import connect_ro
from sync.store import SQLiteStore

SEED = 20261123
RUNS = 300            # the short version …
BUDGET_SECONDS = 80   # … stops starting runs after this long on a busy machine (the count is checked)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Town]]:
    db = tmp_path / "gridbook.db"
    store = SQLiteStore(str(db))
    store.migrate()
    town = build_town(store)
    store.close()
    server = Server(db, tmp_path / "server.log")
    server.start()
    try:
        yield server, town
    finally:
        server.stop()


def logged(server: Server, user_id: str, mid: str) -> int:
    conn = connect_ro(server.db)
    try:
        return int(conn.execute("SELECT count(*) FROM mutation_log WHERE user_id = ? AND mid = ?",
                                (user_id, mid)).fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow
def test_each_fault_of_the_proxy_does_what_it_says(served: tuple[Server, Town]) -> None:
    server, town = served
    script: deque[Fault] = deque()
    kills: list[int] = []

    def kill() -> None:
        server.kill9()
        kills.append(server.port)
        server.start()

    with FaultProxy(lambda: server.port, lambda method, path: script.popleft() if script else Fault(),
                    on_kill=kill) as proxy:
        net = HttpTransport(lambda: proxy.url, lambda c: town.tokens["w1"])
        phone = SimClient("w1", clock=lambda: "2026-11-20T09:00:00+08:00", new_id=Ids("faults"))
        user = town.actors["w1"].user_id
        # whether the server applied the batch, for each fault (a kill may land either side of the commit)
        expect: dict[str, bool | None] = {"drop_request": False, "cut_request": False, "drop_response": True,
                                          "cut_response": True, "kill": None}
        outcomes: dict[str, Any] = {}
        for kind, applied in expect.items():
            m = phone.create("households", {"grid_id": town.ids["g1"], "address": f"{kind} 1号", "head_name": "王阿公"})
            script.append(Fault(kind, cut=0.5))
            with pytest.raises(LostResponse):
                phone.push(net)
            assert phone.inflight == [m], "the phone keeps the batch whose answer it lost"
            n = logged(server, user, m["mid"])
            if applied is not None:
                assert n == int(applied), f"{kind}: applied {n} times, expected {int(applied)}"
            outcomes[kind] = n
            phone.push(net)                       # the same batch again, same mid: applied exactly once
            assert logged(server, user, m["mid"]) == 1 and phone.results[m["mid"]]["status"] == "applied"
        assert kills, "the server was killed and restarted"
        # a delivery duplicated on the way: applied once, both answers alike, the phone gets one
        m = phone.create("households", {"grid_id": town.ids["g1"], "address": "duplicate 1号", "head_name": "王阿公"})
        script.append(Fault("duplicate"))
        phone.push(net)
        assert logged(server, user, m["mid"]) == 1 and phone.results[m["mid"]]["status"] == "applied"
        assert proxy.stats["duplicate"] == 1 and proxy.stats["duplicate_mismatch"] == 0
        # a delayed request and a cut pull page: the phone ends with the server's records once each
        script.append(Fault("cut_response", cut=0.3))
        assert not phone.sync(net)
        script.append(Fault("delay", delay=0.05))
        assert phone.sync(net)
        mine = {k for k in phone.replica if k[0] == "households"}
        assert len(mine) == len(expect) + 1
        assert proxy.stats["requests"] >= 2 * len(expect) + 3
    conn = connect_ro(server.db)
    try:
        assert conn.execute("SELECT count(*) FROM households").fetchone()[0] == len(expect) + 1
    finally:
        conn.close()


@pytest.mark.slow
def test_seeded_runs_through_the_faulty_proxy_lose_nothing_and_apply_nothing_twice(tmp_path: Path) -> None:
    total = Figures()
    t0 = time.monotonic()
    with Harness(tmp_path, SEED) as h:
        for i in range(RUNS):
            total.add(h.run(i))
            if time.monotonic() - t0 > BUDGET_SECONDS:
                break
        log = h.server.log() if total.failed else ""
    print(f"fault runs: {total.runs} runs, {total.requests} requests, {total.faults_injected} faults "
          f"({dict(total.faults)}), {total.mutations} mutations ({dict(total.results)}), "
          f"{time.monotonic() - t0:.0f} s")   # shown with pytest -rP
    assert not total.failed, "\n\n".join(total.failed[:3]) + f"\n--- server log ---\n{log}"
    assert total.losses == 0 and total.duplicates == 0
    assert total.runs >= 50, f"only {total.runs} runs in {BUDGET_SECONDS} s"
    for kind in (*FAULTS, "kill"):
        assert total.faults[kind] > 0, f"no {kind} fault was injected"
    assert total.results["conflict"] > 0 and total.conflicts["field"] > 0
    assert total.rejections_seen == total.results["rejected"] > 0
    assert total.cursor_expired > 0 and total.resends > 0
