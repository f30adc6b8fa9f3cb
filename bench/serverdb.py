"""Server databases for the benchmark, built through the engine's push (never raw inserts).

``Town`` makes a county → town → village → grid tree and its accounts, then ``add_grid`` pushes a
grid's workload (``bench.workload``) as the users who would have made it, in batches of 500,
exactly as ``server/demo.py`` seeds the demo town. Every grid gets two grid workers
(``<prefix>w1`` is the phone we measure, ``<prefix>w2`` the colleague), all with the password
``demo``; ``staff1`` is town staff.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sync import accounts, engine
from sync.catalogue import install_catalogue
from sync.protocol import MutationIn, PushRequest
from sync.scope import Actor
from sync.store import SQLiteStore, open_store

from . import workload

PASSWORD = "demo"
BATCH = 500
CST = timezone(timedelta(hours=8))
COUNTED = ("households", "residents", "visits", "matters", "matter_events", "conflicts", "areas", "users",
           "categories")


def record_count(store: SQLiteStore) -> int:
    return sum(int(store.conn.execute(f"SELECT count(*) FROM {c}").fetchone()[0]) for c in COUNTED)


@dataclass
class Grid:
    id: str
    workers: tuple[str, str]
    work: workload.Workload


@dataclass
class Town:
    store: SQLiteStore
    seed: int = 20261123
    actors: dict[str, Actor] = field(default_factory=dict)
    grids: list[Grid] = field(default_factory=list)
    villages: list[str] = field(default_factory=list)
    county: str = ""
    town: str = ""
    ids: workload.Ids = field(default_factory=lambda: workload.Ids("town"))
    _hash: str = ""

    @classmethod
    def create(cls, path: str, seed: int = 20261123) -> "Town":
        store = open_store(path)
        store.migrate()
        install_catalogue(store)
        t = cls(store, seed)
        t._hash = accounts.hash_password(PASSWORD)
        t.ids = workload.Ids(f"town:{seed}")
        t._user("admin", "admin", [])
        t.county, t.town = t.ids(), t.ids()
        at = datetime(2024, 10, 28, 9, 0, tzinfo=CST)
        t.push("admin", [t._m("areas", t.county, {"level": "county", "name": "海曙区", "code": "330203"}, at),
                         t._m("areas", t.town, {"parent_id": t.county, "level": "town", "name": "章水镇",
                                                "code": "330203108"}, at)])
        t._user("staff1", "staff", [t.town])
        return t

    # -- accounts and pushes ---------------------------------------------------------------------
    def _user(self, username: str, role: str, areas: list[str]) -> None:
        accounts.create_user(self.store, username, PASSWORD, role, areas, display_name=username,
                             password_hash=self._hash)
        user = self.store.user_by_username(username)
        assert user is not None
        login = accounts.register_device(self.store, user, "seed")
        self.actors[username] = accounts.authenticate(self.store, login.token)

    def _m(self, coll: str, rid: str, fields: dict[str, Any], at: datetime) -> dict[str, Any]:
        return {"mid": self.ids(), "collection": coll, "id": rid, "op": "upsert", "base": 0, "fields": fields,
                "at": at.isoformat()}

    def push(self, who: str, mutations: list[dict[str, Any]]) -> None:
        for i in range(0, len(mutations), BATCH):
            chunk = [MutationIn(**m) for m in mutations[i:i + BATCH]]
            resp = engine.push(self.store, self.actors[who], PushRequest(protocol=1, mutations=chunk))
            bad = [r for r in resp.results if r.status not in ("applied", "merged")]
            if bad:
                raise RuntimeError(f"bench seed: {who}: {bad[0].status} {bad[0].error}")

    # -- grids -------------------------------------------------------------------------------------
    def add_grid(self, prefix: str, salt: str, scale: float = 1.0) -> Grid:
        """A new grid (three grids to a village) with its two workers and its whole workload."""
        at = datetime(2024, 10, 28, 9, 0, tzinfo=CST)
        n = len(self.grids)
        if n % 3 == 0:
            vid = self.ids()
            self.push("admin", [self._m("areas", vid, {"parent_id": self.town, "level": "village",
                                                       "name": f"第{n // 3 + 1}村", "mountain": True}, at)])
            self.villages.append(vid)
        gid = self.ids()
        self.push("admin", [self._m("areas", gid, {"parent_id": self.villages[-1], "level": "grid",
                                                   "name": f"第{n // 3 + 1}村第{n % 3 + 1}网格", "mountain": True}, at)])
        workers = (f"{prefix}w1", f"{prefix}w2")
        for u in workers:
            self._user(u, "grid_worker", [gid])
        w = workload.grid_mutations(gid, workers, "staff1", seed=self.seed, salt=salt, scale=scale)
        for who, muts in w.pushes:
            self.push(who, muts)
        grid = Grid(gid, workers, w)
        self.grids.append(grid)
        return grid


def build(path: str, grids: list[tuple[str, str]], scale: float = 1.0) -> tuple[Town, float]:
    """A fresh database with the given grids ((prefix, salt) each); returns it and the build time."""
    t0 = time.perf_counter()
    town = Town.create(path)
    for prefix, salt in grids:
        town.add_grid(prefix, salt, scale)
    return town, time.perf_counter() - t0
