"""The demo town (server/demo.py) and the shipped catalogue (sync/catalogue.py).

Seeding takes a few seconds, so the town is seeded once per module; the determinism test seeds
a second copy through the command line (``python -m server demo``) and compares the two.
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator

import pytest

from server import cli
from server.demo import AGENTS, END, TODAY, seed
from sync import accounts, engine, workflow
from sync.catalogue import CATEGORY_NAMESPACE, category_id, install_catalogue, load_catalogue
from sync.schema import CHECKLIST_ITEMS, ID_NUMBER_RE, LINES, MATTER_STATUSES, PHONE_RE
from sync.scope import Actor
from sync.store import SQLiteStore

from . import backend

DEMO_ACCOUNTS = ("worker1", "worker2", "worker3", "agent1", "staff1", "admin")
HOUSEHOLD_TAGS = {"独居老人", "低保户", "残疾人", "留守儿童", "党员中心户", "山区农户", "困难家庭"}
OPEN = {"submitted", "accepted", "assigned", "in_progress", "waiting_materials", "escalated", "reopened"}


@dataclass
class Demo:
    store: SQLiteStore
    counts: dict[str, int]
    path: str

    def records(self, coll: str) -> list[dict[str, Any]]:
        rows = self.store.conn.execute(f"SELECT id, version, data, created_by FROM {coll} WHERE deleted = 0")
        return [dict(json.loads(r["data"]), id=r["id"], version=r["version"], created_by=r["created_by"])
                for r in rows]

    def user(self, username: str) -> dict[str, Any]:
        rec = self.store.user_by_username(username)
        assert rec is not None, username
        return dict(rec.data, id=rec.id)

    def areas(self) -> dict[str, dict[str, Any]]:
        return {a["id"]: a for a in self.records("areas")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("demo")
    path = backend.new_db(tmp, "demo.db", keep=True)
    store = backend.open_store(path)
    store.migrate()
    counts = seed(store, blob_dir=backend.beside_db(tmp).get("blob_dir"))   # PostgreSQL: not under ./<URL>
    yield Demo(store, counts, path)
    store.close()


def _content(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every record's id, version, author and data: what must not depend on when or where it was seeded."""
    s = backend.open_store(path)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for coll in ("areas", "categories", "users", "households", "residents", "visits", "matters", "matter_events"):
            out[coll] = [tuple(r) for r in s.conn.execute(
                f"SELECT id, version, deleted, data, created_by, updated_by FROM {coll} ORDER BY id")]
        # Conflict records get server-made ids and device ids; what they say must still be the same.
        rows = []
        for (data,) in s.conn.execute("SELECT data FROM conflicts"):
            d = json.loads(data)
            rows.append(json.dumps([d["kind"], d["collection"], d["record_id"], d["fields"], d["error"],
                                    d["author_id"], d["involved"], d["status"], d["mutation"]], sort_keys=True))
        out["conflicts"] = [(r,) for r in sorted(rows)]
        return out
    finally:
        s.close()


def test_the_same_seed_gives_the_same_town(demo: Demo, tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    other = backend.new_db(tmp_path, "again.db")
    for name, value in backend.beside_db(tmp_path).items():   # PostgreSQL: blobs not into ./data
        monkeypatch.setenv("GRIDBOOK_" + name.upper(), value)
    assert cli.main(["demo", "--db", other]) == 0
    assert "Seeded: areas 16" in capsys.readouterr().out
    first, second = _content(demo.path), _content(other)
    for coll in first:
        assert len(first[coll]) == len(second[coll]), coll
        assert first[coll] == second[coll], f"{coll} differs between two seeds with the same value"


def test_seeding_refuses_a_database_that_has_the_town(demo: Demo) -> None:
    from sync.errors import SyncError

    with pytest.raises(SyncError):
        seed(demo.store)


def test_counts_are_in_range(demo: Demo) -> None:
    c = demo.counts
    assert c["areas"] == 1 + 1 + 4 + 10
    assert c["categories"] == len(load_catalogue())
    assert c["users"] >= 17
    assert 1100 <= c["households"] <= 1300
    assert 1.5 * c["households"] <= c["residents"] <= 4 * c["households"]
    assert 8000 <= c["visits"] <= 20000
    assert 250 <= c["matters"] <= 500
    assert c["matter_events"] > 4 * c["matters"]
    for coll, n in c.items():
        assert n == demo.store.conn.execute(f"SELECT count(*) FROM {coll} WHERE deleted = 0").fetchone()[0]


def test_area_tree_is_the_mountain_town(demo: Demo) -> None:
    areas = demo.areas()
    by_level: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in areas.values():
        by_level[a["level"]].append(a)
    assert [a["name"] for a in by_level["county"]] == ["海曙区"]
    assert [a["name"] for a in by_level["town"]] == ["章水镇"]
    villages = {a["name"]: a for a in by_level["village"]}
    assert set(villages) == {"杖锡村", "李家坑村", "蜜岩村", "樟村"}
    tree = engine.area_tree(demo.store)
    for name, v in villages.items():
        grids = [g for g in by_level["grid"] if g["parent_id"] == v["id"]]
        assert 2 <= len(grids) <= 3
        assert all(g["name"].startswith(name + "第") and g["name"].endswith("网格") for g in grids)
        assert sorted(g["sort"] for g in grids) == list(range(1, len(grids) + 1))
        # Mountain status is inherited down the tree, so the valley village must not sit under a mountain area.
        assert tree.is_mountain(grids[0]["id"]) is (name != "樟村")
        assert v["code"].startswith("330203106") and len(v["code"]) == 12   # the real 统计用区划代码


def test_households_and_residents_look_like_a_village(demo: Demo) -> None:
    households = demo.records("households")
    residents = demo.records("residents")
    areas = demo.areas()
    per_household: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in residents:
        per_household[r["household_id"]].append(r)
    per_grid = Counter(h["grid_id"] for h in households)
    assert all(100 <= n <= 140 for n in per_grid.values())
    assert len({r["id_number"] for r in residents}) == len(residents)
    for h in households:
        people = per_household[h["id"]]
        assert 1 <= len(people) <= 5
        assert h["members_count"] == len(people)
        assert sum(p["relation"] == "户主" for p in people) == 1
        assert [p["name"] for p in people if p["relation"] == "户主"] == [h["head_name"]]
        assert set(h["tags"]) <= HOUSEHOLD_TAGS
        assert h["address"].startswith(areas[areas[h["grid_id"]]["parent_id"]]["name"]) and h["address"].endswith("号")
        assert h["phone"] is None or PHONE_RE.match(h["phone"])
    for r in residents:
        n = r["id_number"]
        assert ID_NUMBER_RE.match(n)
        total = sum(int(ch) * w for ch, w in zip(n[:17], (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)))
        assert n[17] == "10X98765432"[total % 11], n
        assert int(n[6:10]) == r["birth_year"]
        assert (int(n[16]) % 2 == 1) == (r["gender"] == "male")
        assert r["phone"] is None or r["phone"][0] == "1" and len(r["phone"]) == 11
    tags = Counter(t for h in households for t in h["tags"])
    assert HOUSEHOLD_TAGS <= set(tags)
    alone = [h for h in households if "独居老人" in h["tags"]]
    mountain = [h for h in alone if "山区农户" in h["tags"]]
    assert len(alone) > 0.1 * len(households) and len(mountain) > len(alone) / 2


def test_visits_follow_the_rhythm_of_the_grid(demo: Demo) -> None:
    households = {h["id"]: h for h in demo.records("households")}
    users = {u["id"]: u for u in demo.records("users")}
    visits = demo.records("visits")
    times: dict[str, list[date]] = defaultdict(list)
    for v in visits:
        d = date.fromisoformat(v["visited_at"][:10])
        assert date(2024, 11, 1) <= d <= TODAY
        assert v["visited_at"].endswith("+08:00")
        assert set(v["checklist"]) == set(CHECKLIST_ITEMS)
        assert v["narrative"]
        worker = users[v["worker_id"]]
        assert worker["role"] == "grid_worker" and households[v["household_id"]]["grid_id"] in worker["areas"]
        times[v["household_id"]].append(d)
    assert set(times) == set(households)

    def gap(hid: str) -> float:
        ds = sorted(times[hid])
        return statistics.mean((b - a).days for a, b in zip(ds, ds[1:])) if len(ds) > 1 else 999.0

    key = [h for h in households if {"独居老人", "低保户"} & set(households[h]["tags"])]
    others = [h for h in households if h not in key]
    assert 20 <= statistics.median(gap(h) for h in key) <= 40          # about monthly
    assert 55 <= statistics.median(gap(h) for h in others) <= 125      # every two to four months
    stale30 = [h for h in households if (TODAY - max(times[h])).days > 30]
    stale90 = [h for h in households if (TODAY - max(times[h])).days > 90]
    assert stale90 and len(stale30) > len(stale90)
    assert any(h in key for h in stale30)
    checks = Counter(k for v in visits for k, ok in v["checklist"].items() if ok)
    assert all(checks[item] > 0.85 * len(visits) for item in CHECKLIST_ITEMS)
    assert 0.15 < sum(bool(v["needs"]) for v in visits) / len(visits) < 0.4
    assert 0.3 < sum(v["gps"] is not None for v in visits) / len(visits) < 0.6


def _events(demo: Demo) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in sorted(demo.records("matter_events"), key=lambda e: e["version"]):
        out[e["matter_id"]].append(e)
    return out


def test_every_status_is_reached_through_events(demo: Demo) -> None:
    matters = demo.records("matters")
    assert {m["status"] for m in matters} == set(MATTER_STATUSES)
    users = {u["id"]: u for u in demo.records("users")}
    events = _events(demo)
    for m in matters:
        # a status event moves the matter, and so does an agent's step that names a status (delivered)
        moves = [e for e in events[m["id"]] if e["kind"] in ("status", "step") and e["to"] and e["applied"]]
        status = workflow.INITIAL
        for e in moves:
            assert e["from"] == status and workflow.is_transition(status, e["to"])
            role = users[e["actor_id"]]["role"]
            if e["to"] in ("accepted", "not_accepted", "merged_duplicate", "closed", "reopened"):
                assert users[e["actor_id"]]["username"] == "staff1"
            if e["to"] in ("in_progress", "resolved") and role not in ("staff", "admin"):
                assert e["from"] in ("assigned", "waiting_materials", "reopened", "in_progress")
            status = e["to"]
        assert status == m["status"], m["title"]
        ats = [e["at"] for e in events[m["id"]]]
        assert all(a <= END.isoformat() for a in ats)
        if m["status"] == "resolved" or m["status"] == "closed":
            assert m["resolved_at"] is not None
        if m["status"] == "closed":
            assert m["closed_at"] is not None and m["closed_at"] >= m["resolved_at"]
    kinds = Counter(e["kind"] for es in events.values() for e in es)
    assert {"status", "note", "step", "custody", "feedback", "supervise", "delegation"} <= set(kinds)


def test_matters_are_realistic(demo: Demo) -> None:
    matters = demo.records("matters")
    categories = {c["code"]: c for c in load_catalogue()}
    users = {u["id"]: u for u in demo.records("users")}
    visits = {v["id"]: v for v in demo.records("visits")}
    households = {h["id"]: h for h in demo.records("households")}
    areas = demo.areas()
    channels = Counter(m["channel"] for m in matters)
    assert {"visit", "village_hotline", "hotline_81890", "proxy", "walk_in"} <= set(channels)
    assert any(m["category"] is None and m["status"] == "submitted" for m in matters)
    for m in matters:
        assert m["title"] and m["description"]
        if m["category"] is not None:
            assert m["category"] in categories and categories[m["category"]]["parent_code"]
        if m["channel"] == "visit":
            v = visits[m["visit_id"]]
            assert v["household_id"] == m["household_id"] and v["visited_at"] == m["raised_at"]
        if m["status"] not in ("submitted", "not_accepted", "merged_duplicate"):
            assert m["deadline"] and m["line"] in LINES and m["level"] in ("village", "town", "county")
        if m["handling_mode"] == "proxy":
            agent = users[m["assignee_id"]]
            village = areas[households[m["household_id"]]["grid_id"]]["parent_id"]
            assert agent["role"] == "proxy_agent" and agent["areas"] == [village]
            assert m["category"] is None or m["category"].startswith("proxy.")
        if m["status"] == "merged_duplicate":
            original = next(x for x in matters if x["id"] == m["duplicate_of"])
            assert original["title"] == m["title"] and original["household_id"] != m["household_id"]


def test_resolution_rate_is_like_haishu(demo: Demo) -> None:
    statuses = Counter(m["status"] for m in demo.records("matters"))
    collected = sum(statuses.values()) - statuses["not_accepted"] - statuses["merged_duplicate"]
    rate = (statuses["resolved"] + statuses["closed"]) / collected
    assert 0.85 <= rate <= 0.90, rate                      # 化解率 87.4% in the seed document


def test_there_are_overdue_and_supervised_matters(demo: Demo) -> None:
    matters = demo.records("matters")
    overdue = [m for m in matters if m["status"] in OPEN and m["deadline"] and m["deadline"] < TODAY.isoformat()]
    assert 5 <= len(overdue) <= 30
    supervised = [m for m in matters if m["supervised"]]
    assert len(supervised) >= 10
    assert all(m["supervision_note"] for m in supervised)
    assert any(m in overdue for m in supervised) and any(m["status"] == "closed" for m in supervised)
    staff1 = demo.user("staff1")["id"]
    events = _events(demo)
    for m in supervised:
        assert any(e["kind"] == "supervise" and e["actor_id"] == staff1 for e in events[m["id"]])


def test_open_conflicts_keep_both_values(demo: Demo) -> None:
    conflicts = demo.records("conflicts")
    ids = {u: demo.user(u)["id"] for u in ("worker1", "worker2", "worker3", "agent1", "staff1")}
    field = [c for c in conflicts if c["kind"] == "field"]
    assert len(field) >= 2
    for c in field:
        assert c["status"] == "open" and c["collection"] == "households"
        assert set(c["involved"]) == {ids["worker1"], ids["worker2"]}
        for values in c["fields"].values():
            assert values["incoming"] and values["current"] and values["incoming"] != values["current"]
        current = demo.store.get("households", c["record_id"])
        assert current is not None
        for name, values in c["fields"].items():
            assert current.data[name] == values[values["winner"]]
    transition = [c for c in conflicts if c["kind"] == "transition"]
    assert len(transition) == 1 and transition[0]["author_id"] == ids["agent1"]
    assert transition[0]["fields"]["status"]["incoming"] == "resolved"
    assert transition[0]["fields"]["status"]["current"] == "escalated"
    rejected = [c for c in conflicts if c["kind"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["author_id"] == ids["worker3"]
    assert rejected[0]["error"]["code"] == "forbidden" and rejected[0]["status"] == "open"


def test_demo_accounts_log_in_with_demo(demo: Demo) -> None:
    roles = {"worker1": "grid_worker", "worker2": "grid_worker", "worker3": "grid_worker", "agent1": "proxy_agent",
             "staff1": "staff", "admin": "admin"}
    for username in DEMO_ACCOUNTS:
        result = accounts.login(demo.store, username, "demo", "test phone")
        actor = accounts.authenticate(demo.store, result.token)
        assert actor.role == roles[username]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in result.user.data["display_name"])
    others = [u for u in demo.records("users") if u["username"] not in DEMO_ACCOUNTS]
    assert all(u["username"].isascii() and u["username"].isalpha() for u in others)
    grids = {g["id"] for g in demo.records("areas") if g["level"] == "grid"}
    covered = {a for u in demo.records("users") if u["role"] == "grid_worker" for a in u["areas"]}
    assert covered == grids                                   # every grid has its worker


def test_worker1_and_worker2_share_a_grid_and_worker3_is_elsewhere(demo: Demo) -> None:
    areas = demo.areas()
    w1, w2, w3 = (demo.user(u) for u in ("worker1", "worker2", "worker3"))
    assert w1["areas"] == w2["areas"] and len(w1["areas"]) == 1
    assert areas[w1["areas"][0]]["name"] == "杖锡村第一网格"
    assert w3["areas"] != w1["areas"]
    assert areas[areas[w3["areas"][0]]["parent_id"]]["name"] != "杖锡村"
    agent = demo.user("agent1")
    assert agent["areas"] == [areas[w1["areas"][0]]["parent_id"]]
    staff = demo.user("staff1")
    assert [areas[a]["name"] for a in staff["areas"]] == ["章水镇"]


def _pull_all(store: SQLiteStore, actor: Actor) -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}
    page = engine.pull(store, actor, None, 1000)
    while True:
        for c in page.changes:
            if c.removed:
                out.pop((c.collection, c.id), None)
            else:
                out[(c.collection, c.id)] = c
        if not page.more:
            return out
        page = engine.pull(store, actor, page.cursor, 1000)


def test_agent1_pulls_their_proxy_matters(demo: Demo) -> None:
    login = accounts.login(demo.store, "agent1", "demo", "agent1's phone")
    actor = accounts.authenticate(demo.store, login.token)
    got = _pull_all(demo.store, actor)
    matters = [c.data for (coll, _), c in got.items() if coll == "matters"]
    assert len(matters) >= 4
    assert all(m["handling_mode"] == "proxy" and m["assignee_id"] == actor.user_id for m in matters)
    assert all(workflow.delegation_active(m["status"]) for m in matters)
    assert {"waiting_materials", "in_progress", "assigned"} <= {m["status"] for m in matters}
    households = {rid for (coll, rid) in got if coll == "households"}
    assert {m["household_id"] for m in matters} <= households
    assert not any(coll == "visits" for coll, _ in got)       # an agent sees matters, not the grid's diary
    residents = [c.data for (coll, _), c in got.items() if coll == "residents"]
    assert residents and all(r["household_id"] in households for r in residents)
    assert sum(coll == "categories" for coll, _ in got) == len(load_catalogue())


def test_a_grid_worker_pulls_their_grid(demo: Demo) -> None:
    login = accounts.login(demo.store, "worker3", "demo", "worker3's phone")
    actor = accounts.authenticate(demo.store, login.token)
    got = _pull_all(demo.store, actor)
    households = [c.data for (coll, _), c in got.items() if coll == "households"]
    assert 100 <= len(households) <= 140
    assert {h["grid_id"] for h in households} == set(actor.areas)
    residents = [c.data for (coll, _), c in got.items() if coll == "residents"]
    assert residents and all("*" in r["id_number"] for r in residents)   # masked for grid workers
    conflicts = [c.data for (coll, _), c in got.items() if coll == "conflicts"]
    assert [c["kind"] for c in conflicts] == ["rejected"]                 # worker3 sees their refused edit


# -- the catalogue --------------------------------------------------------------------------------

def test_install_catalogue_is_idempotent(tmp_path: Any) -> None:
    store = backend.open_store(backend.new_db(tmp_path, "cat.db"))
    store.migrate()
    try:
        n = install_catalogue(store)
        assert n == len(load_catalogue()) > 40
        assert install_catalogue(store) == 0
        assert store.conn.execute("SELECT count(*) FROM categories").fetchone()[0] == n
        rec = store.get("categories", category_id("proxy.petition"))
        assert rec is not None and rec.version > 0 and rec.keys == ["g:all"]
        assert set(rec.meta) >= {"code", "name_zh", "line"}
        assert store.conn.execute("SELECT count(*) FROM feed WHERE key = 'g:all'").fetchone()[0] == n
    finally:
        store.close()


def test_install_catalogue_on_the_demo_database_does_nothing(demo: Demo) -> None:
    assert install_catalogue(demo.store) == 0


def test_category_ids_are_the_same_everywhere() -> None:
    assert category_id("proxy") == str(uuid.uuid5(CATEGORY_NAMESPACE, "proxy"))
    assert CATEGORY_NAMESPACE == uuid.UUID("5b0f3a52-7c1e-5d3a-9f0e-6a8b2c4d1e70")


def test_the_catalogue_is_two_levels_with_lines_and_materials() -> None:
    entries = load_catalogue()
    codes = [e["code"] for e in entries]
    assert len(codes) == len(set(codes))
    first = {e["code"]: e for e in entries if e["parent_code"] is None}
    assert set(first) == {"proxy", "livelihood", "dispute", "environment", "community", "safety", "suggestion"}
    seen: set[str] = set()
    for e in entries:
        assert e["line"] in LINES and e["lowest_level"] in ("village", "town", "county")
        assert 3 <= e["deadline_days"] <= 30 and e["name_zh"] and e["name_en"] and e["active"] is True
        if e["parent_code"] is not None:
            assert e["parent_code"] in first and e["parent_code"] in seen      # parents come first
            assert e["code"].startswith(e["parent_code"] + ".") and "." not in e["code"][len(e["parent_code"]) + 1:]
        seen.add(e["code"])
        if e["code"].startswith("proxy."):
            assert e["materials"], e["code"]
            for m in e["materials"]:
                assert set(m) == {"code", "name_zh", "name_en", "original"} and isinstance(m["original"], bool)
            assert any(m["original"] for m in e["materials"])
        assert e["sensitive"] is (e["code"] == "proxy.petition")
    assert [e["sort"] for e in entries] == sorted(e["sort"] for e in entries)
    assert len(entries) - len(first) == 40
    by_code = {e["code"]: e for e in entries}
    assert by_code["proxy.social_insurance_registration"]["line"] == "shebao"
    assert by_code["proxy.petition"]["line"] == "xinfang"
    assert by_code["proxy.family_planning"]["line"] == "jisheng"
    assert by_code["proxy.civil_affairs_relief"]["line"] == "minzheng"
    assert by_code["dispute.neighbour"]["line"] == "tiaojie"
    names = {m["code"] for m in by_code["proxy.social_insurance_registration"]["materials"]}
    assert {"id_card", "household_register", "photo_1inch"} <= names


def test_every_agent_village_is_a_mountain_village(demo: Demo) -> None:
    tree = engine.area_tree(demo.store)
    agents = [demo.user(username) for username, _ in AGENTS.values()]
    assert all(tree.is_mountain(a["areas"][0]) for a in agents)
