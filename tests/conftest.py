"""Tiny fixtures: a small town in a temporary database, actors for every role, mutation factories.

    town.push("w1", town.mut("households", hid, {...}))    -> list of PushResult
    town.pull_all("w1")                                       -> {(collection, id): change}
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field
from typing import Any

import pytest

from sync import accounts, engine
from sync.protocol import PushResult
from sync.scope import Actor
from sync.store import SQLiteStore, open_store

from . import backend

PASSWORD = "demo"
_T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
_HASH: dict[str, str] = {}


def password_hash() -> str:
    """One real scrypt hash per session, shared by the fixture users (hashing is deliberately slow)."""
    if "h" not in _HASH:
        _HASH["h"] = accounts.hash_password(PASSWORD)
    return _HASH["h"]


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Town:
    """County 海曙区 > town 章水镇 > villages 杖锡村 (grids g1, g2) and 李家坑村 (grid g3)."""

    store: SQLiteStore
    ids: dict[str, str] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    clock: int = 0

    def at(self) -> str:
        """Edit times that grow by a minute per call, so 'later' is unambiguous in tests."""
        self.clock += 1
        return (_T0 + timedelta(minutes=self.clock)).isoformat()

    def mut(self, collection: str, rid: str, fields: dict[str, Any] | None = None, base: int = 0,
            op: str = "upsert", at: str | None = None, mid: str | None = None) -> dict[str, Any]:
        return {"mid": mid or new_id(), "collection": collection, "id": rid, "op": op, "base": base,
                "fields": fields if fields is not None else {}, "at": at or self.at()}

    def push(self, who: str, *mutations: dict[str, Any]) -> list[PushResult]:
        body = json.dumps({"protocol": 1, "mutations": list(mutations)}).encode()
        return engine.push(self.store, self.actors[who], body).results

    def push1(self, who: str, mutation: dict[str, Any]) -> PushResult:
        return self.push(who, mutation)[0]

    def pull_all(self, who: str, limit: int = 500) -> dict[tuple[str, str], Any]:
        out: dict[tuple[str, str], Any] = {}
        page = engine.pull(self.store, self.actors[who], None, limit)
        while True:
            for c in page.changes:
                if c.removed:
                    out.pop((c.collection, c.id), None)
                else:
                    out[(c.collection, c.id)] = c
            if not page.more:
                return out
            page = engine.pull(self.store, self.actors[who], page.cursor, limit)

    def version(self, collection: str, rid: str) -> int:
        rec = self.store.get(collection, rid)
        assert rec is not None
        return rec.version

    def household(self, who: str = "w1", grid: str = "g1", **fields: Any) -> str:
        hid = new_id()
        data = {"grid_id": self.ids[grid], "address": "杖锡村上岙12号", "head_name": "王阿公"}
        data.update(fields)
        r = self.push1(who, self.mut("households", hid, data))
        assert r.status == "applied", r
        return hid

    def matter(self, who: str = "w1", household: str | None = None, **fields: Any) -> str:
        mid = new_id()
        data = {"household_id": household or self.household(who), "title": "屋顶漏雨需要修缮"}
        data.update(fields)
        r = self.push1(who, self.mut("matters", mid, data))
        assert r.status == "applied", r
        return mid

    def delegate(self, matter: str, who: str = "agent", agent: str = "agent", until: str = "2027-12-31",
                 signature: str = "5" * 64) -> str:
        """Record a resident's authorisation (委托) of ``agent`` on ``matter``; returns the resident's id."""
        m = self.store.get("matters", matter)
        assert m is not None
        rid = m.data.get("resident_id")
        if not rid:
            rid = new_id()
            r = self.push1("staff", self.mut("residents", rid, {"household_id": m.data["household_id"], "name": "王阿婆"}))
            assert r.status == "applied", r
        r = self.push1(who, self.mut("matter_events", new_id(), {
            "matter_id": matter, "kind": "delegation", "for_resident_id": rid,
            "for_user_id": self.actors[agent].user_id, "data": {"until": until, "signature": signature},
            "attachments": [signature]}))
        assert r.status == "applied", r
        return rid

    def move(self, who: str, matter: str, frm: str, to: str, note: str = "") -> PushResult:
        return self.push1(who, self.mut("matter_events", new_id(),
                                        {"matter_id": matter, "kind": "status", "from": frm, "to": to, "note": note}))


def build_town(store: SQLiteStore) -> Town:
    t = Town(store)
    admin_id = accounts.create_user(store, "admin", PASSWORD, "admin", [], password_hash=password_hash())
    t.actors["admin"] = _actor(store, "admin", t)
    ids = t.ids
    for key in ("county", "town", "v1", "v2", "g1", "g2", "g3"):
        ids[key] = new_id()
    areas = [("county", None, "county", "海曙区"), ("town", "county", "town", "章水镇"),
             ("v1", "town", "village", "杖锡村"), ("v2", "town", "village", "李家坑村"),
             ("g1", "v1", "grid", "杖锡村第一网格"), ("g2", "v1", "grid", "杖锡村第二网格"),
             ("g3", "v2", "grid", "李家坑村网格")]
    results = t.push("admin", *[t.mut("areas", ids[k], {"level": lvl, "name": name, "mountain": k == "v1",
                                                        **({"parent_id": ids[p]} if p else {})})
                                for k, p, lvl, name in areas])
    assert all(r.status == "applied" for r in results), results
    for key, username, role, area in (("w1", "worker1", "grid_worker", "g1"), ("w2", "worker2", "grid_worker", "g1"),
                                      ("w3", "worker3", "grid_worker", "g3"), ("agent", "agent1", "proxy_agent", "v1"),
                                      ("staff", "staff1", "staff", "town")):
        accounts.create_user(store, username, PASSWORD, role, [ids[area]], password_hash=password_hash())
        t.actors[key] = _actor(store, username, t, key)
    del admin_id
    return t


def _actor(store: SQLiteStore, username: str, t: Town, key: str | None = None) -> Actor:
    result = accounts.login(store, username, PASSWORD, f"{username}'s phone")
    t.tokens[key or username] = result.token
    return accounts.authenticate(store, result.token)


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Any:
    """PostgreSQL runs: the databases a test made go at its end (``tests/backend.py``)."""
    yield
    if backend.POSTGRES:
        backend.drop_made()


@pytest.fixture(scope="session", autouse=True)
def _drop_kept_databases() -> Any:
    """PostgreSQL runs: the session's templates (``keep=True``) go at its end."""
    yield
    if backend.POSTGRES:
        backend.drop_kept()


@pytest.fixture
def db(tmp_path: Any) -> str:
    """A new, empty database of the backend under test: a SQLite path or a PostgreSQL URL."""
    return backend.new_db(tmp_path)


@pytest.fixture
def store(db: str) -> Any:
    s = open_store(db)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def town(store: SQLiteStore) -> Town:
    return build_town(store)
