"""Scope as a property (issue 12): random users of every role make random pushes — creates, moves,
recategorisations, dispatches, status moves, notes, attachments, conflicting edits and their
resolutions — in random order, and after every step two invariants hold:

1. **Visibility.** Every user's replica, kept by real incremental pulls (``removed`` included),
   holds exactly the records that an independent statement of protocol §3 allows them: a record
   of a grid is seen by whoever holds that grid (workers of the grid, staff above it), by a proxy
   agent only through a matter delegated to them while it is handled, and a sensitive (信访)
   matter only by its handling chain (town staff and above, whoever raised it and its agent while
   it is handled) — never by village staff or the grid's other workers. The oracle below is written
   from the rules, not from the engine's scope keys.
2. **Authority.** No push by a non-staff user changed or created a record outside that user's
   authority: the record (or, for a new record, its parent) was theirs to write before the push,
   and a record whose place changed was moved by someone who holds both places themselves (never
   through a delegation).

``test_the_property_finds_the_findings_when_their_fixes_are_reverted`` reverts the fixes of
findings 1–3 one at a time (the engine's named checks) and shows that the property fails on each.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from sync import accounts, engine, workflow
from sync.catalogue import install_catalogue
from sync.store import SQLiteStore

from . import backend
from .conftest import PASSWORD, Town, build_town, new_id, password_hash

DATA = ("households", "residents", "visits", "matters", "matter_events", "attachments")
SENSITIVE_CATEGORIES = {"proxy.petition"}
CATEGORIES = (None, "proxy.utilities", "proxy.petition")
USERS = ("w1", "w4", "w3", "agent", "agent2", "staff", "vstaff")
NON_STAFF = ("w1", "w4", "w3", "agent", "agent2")
# The grids each user holds themselves (area authority); proxy agents hold none.
GRIDS = {"w1": {"g1"}, "w4": {"g2"}, "w3": {"g3"}, "agent": set(), "agent2": set(),
         "staff": {"g1", "g2", "g3"}, "vstaff": {"g1", "g2"}}
CHAIN = {"staff"}      # users at the level that handles 信访 (the town)
AGENT_VILLAGE = {"agent": {"g1", "g2"}, "agent2": {"g3"}}


# -- the world ------------------------------------------------------------------------------------------

@dataclass
class World:
    t: Town
    grid_of_id: dict[str, str]                     # area id -> "g1" / "g2" / "g3"
    replicas: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    cursors: dict[str, str | None] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def store(self) -> SQLiteStore:
        return self.t.store

    def uid(self, who: str) -> str:
        return self.t.actors[who].user_id

    def who(self, user_id: str | None) -> str | None:
        return next((k for k in USERS if self.t.actors[k].user_id == user_id), None)

    def records(self, coll: str) -> list[Any]:
        # in the order they were made (get_many's dict follows the ids' order in the index, that is
        # the random UUIDs': a pick by position must not depend on them, or examples are not repeatable)
        ids = [r[0] for r in self.store.conn.execute(f"SELECT id FROM {coll} WHERE deleted = 0 "
                                                                 f"ORDER BY {backend.CREATION_ORDER}")]
        found = self.store.get_many(coll, ids)
        return [found[i] for i in ids if i in found]

    def pick(self, coll: str, n: int) -> Any | None:
        recs = self.records(coll)
        return recs[n % len(recs)] if recs else None

    def sync(self, who: str) -> None:
        rep = self.replicas.setdefault(who, {})
        cursor = self.cursors.get(who)
        while True:
            page = engine.pull(self.store, self.t.actors[who], cursor, 1000)
            for c in page.changes:
                if c.removed or c.deleted:
                    rep.pop((c.collection, c.id), None)
                else:
                    rep[(c.collection, c.id)] = c.data or {}
            cursor = page.cursor
            if not page.more:
                break
        self.cursors[who] = cursor


# -- the oracle: protocol §3 in plain terms ---------------------------------------------------------------

class Oracle:
    """Who may see and who may write each record, from the records' data alone."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.h = {r.id: r for r in w.records("households")}
        self.m = {r.id: r for r in w.records("matters")}
        self.res = {r.id: r for r in w.records("residents")}
        self.ev = {r.id: r for r in w.records("matter_events")}
        self.vis = {r.id: r for r in w.records("visits")}

    def grid(self, household_id: str | None) -> str | None:
        h = self.h.get(household_id or "")
        return self.w.grid_of_id.get(h.data["grid_id"]) if h else None

    def handled(self, m: Any) -> bool:
        return workflow.delegation_active(m.data.get("status") or workflow.INITIAL)

    def sensitive(self, m: Any) -> bool:
        return m.data.get("category") in SENSITIVE_CATEGORIES or m.data.get("line") == "xinfang"

    def delegated_to(self, household_id: str) -> set[str]:
        return {self.w.who(m.data["assignee_id"]) or "" for m in self.m.values()
                if m.data["household_id"] == household_id and m.data.get("assignee_id") and self.handled(m)}

    def sees(self, who: str, coll: str, rec: Any) -> bool:
        d = rec.data
        if coll == "households":
            return self.w.grid_of_id.get(d["grid_id"]) in GRIDS[who] or who in self.delegated_to(rec.id)
        if coll == "residents":
            return self.grid(d["household_id"]) in GRIDS[who] or who in self.delegated_to(d["household_id"])
        if coll == "visits":
            return self.grid(d["household_id"]) in GRIDS[who]
        if coll == "matters":
            handlers = {self.w.who(d.get("assignee_id"))} if self.handled(rec) else set()
            if self.sensitive(rec):
                raisers = {self.w.who(rec.created_by)} if self.handled(rec) else set()
                return who in CHAIN or who in handlers or who in raisers
            return self.grid(d["household_id"]) in GRIDS[who] or who in handlers
        if coll == "matter_events":
            m = self.m.get(d["matter_id"])
            return m is not None and self.sees(who, "matters", m)
        if coll == "attachments":
            parents = {"households": self.h, "residents": self.res, "matters": self.m, "matter_events": self.ev,
                       "visits": self.vis}.get(d["record_collection"], {})
            p = parents.get(d["record_id"])
            return p is not None and self.sees(who, d["record_collection"], p)
        raise AssertionError(coll)

    def place(self, coll: str, data: dict[str, Any]) -> str | None:
        if coll == "households":
            return self.w.grid_of_id.get(data["grid_id"])
        if coll in ("residents", "visits", "matters"):
            return self.grid(data["household_id"])
        return None


# -- steps ----------------------------------------------------------------------------------------------

def grid_id(w: World, g: str) -> str:
    return w.t.ids[g]


def step(w: World, s: tuple[Any, ...]) -> tuple[str, list[dict[str, Any]]]:
    """Turn a drawn step into (who pushes, mutations). References are taken modulo what exists."""
    t = w.t
    kind, who, a, b, c = s
    if kind == "household":
        return who, [t.mut("households", new_id(), {"grid_id": grid_id(w, ("g1", "g2", "g3")[a % 3]),
                                                     "address": f"上岙{a}号", "head_name": "户主"})]
    if kind == "resident":
        h = w.pick("households", a)
        return who, [t.mut("residents", new_id(), {"household_id": h.id, "name": "居民"})] if h else []
    if kind == "matter":
        h = w.pick("households", a)
        if h is None:
            return who, []
        fields: dict[str, Any] = {"household_id": h.id, "title": "诉求", "category": CATEGORIES[b % 3]}
        agent = (None, "agent", "agent2")[c % 3]
        if agent:
            fields.update(assignee_id=w.uid(agent), handling_mode="proxy")
        return who, [t.mut("matters", new_id(), fields)]
    if kind == "move_household":
        h = w.pick("households", a)
        return who, [t.mut("households", h.id, {"grid_id": grid_id(w, ("g1", "g2", "g3")[b % 3])},
                           base=h.version)] if h else []
    if kind == "move_resident":
        r, h = w.pick("residents", a), w.pick("households", b)
        return who, [t.mut("residents", r.id, {"household_id": h.id}, base=r.version)] if r and h else []
    if kind == "recategorise":
        m = w.pick("matters", a)
        return who, [t.mut("matters", m.id, {"category": CATEGORIES[b % 3]}, base=m.version)] if m else []
    if kind == "line":
        m = w.pick("matters", a)
        return who, [t.mut("matters", m.id, {"line": ("xinfang", "zongzhi")[b % 2]}, base=m.version)] if m else []
    if kind == "dispatch":
        m = w.pick("matters", a)
        to = (None, "agent", "agent2", "w1", "w3")[b % 5]
        return who, [t.mut("matters", m.id, {"assignee_id": w.uid(to) if to else None}, base=m.version)] if m else []
    if kind == "status":
        m = w.pick("matters", a)
        to = ("accepted", "in_progress", "resolved", "closed", "not_accepted")[b % 5]
        return who, [t.mut("matter_events", new_id(), {"matter_id": m.id, "kind": "status",
                                                       "from": m.data.get("status"), "to": to,
                                                       "note": "办理"})] if m else []
    if kind == "note":
        m = w.pick("matters", a)
        return who, [t.mut("matter_events", new_id(), {"matter_id": m.id, "kind": "note", "note": "记录"})] if m else []
    if kind == "attach":
        coll = ("households", "residents", "matters")[b % 3]
        r = w.pick(coll, a)
        return who, [t.mut("attachments", new_id(), {"record_collection": coll, "record_id": r.id,
                                                     "sha256": f"{c % 16:x}" * 64, "kind": "photo"})] if r else []
    if kind == "conflict":
        # two users edit the same resident's household (or a household's phone) from the same base;
        # the second push is the conflict's author
        r, h = w.pick("residents", a), w.pick("households", b)
        if r is None or h is None:
            return who, []
        first = ("staff", "w1", "agent")[c % 3]
        other = w.pick("households", b + 1 + c)
        w.t.push1(first, t.mut("residents", r.id, {"name": f"改名{c}", "household_id": other.id if other else None},
                               base=r.version))
        return who, [t.mut("residents", r.id, {"name": f"又改{a}", "household_id": h.id}, base=r.version)]
    if kind == "resolve":
        cid = w.conflicts[a % len(w.conflicts)] if w.conflicts else None
        cf = w.store.get("conflicts", cid) if cid else None
        if cf is None:
            return who, []
        if (a // max(1, len(w.conflicts))) % 2 == 0:      # half the time its author decides
            who = w.who(cf.data.get("author_id")) or who
        resolution = ("current", "incoming", "value")[b % 3]
        h = w.pick("households", c)
        fields = {"resolution": resolution}
        if resolution == "value":
            names = list((cf.data.get("fields") or {}).keys())
            value = {n: (h.id if n == "household_id" and h else "新值" if n == "name" else None) for n in names}
            fields["value"] = value
        return who, [t.mut("conflicts", cf.id, fields, base=cf.version)]
    raise AssertionError(kind)


KINDS = ("household", "resident", "matter", "move_household", "move_resident", "recategorise", "line", "dispatch",
         "status", "note", "attach", "conflict", "resolve")
steps = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(USERS), st.integers(0, 999),
                           st.integers(0, 999), st.integers(0, 999)), min_size=1, max_size=14)


# -- the invariants ---------------------------------------------------------------------------------------

def snapshot(w: World) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    return {(coll, r.id): (r.version, r.data) for coll in DATA for r in w.records(coll)}


def check_authority(w: World, who: str, before: dict[tuple[str, str], tuple[int, dict[str, Any]]],
                    oracle_before: Oracle) -> None:
    """No non-staff push changed a record outside the pusher's authority (judged on the state before)."""
    after = snapshot(w)
    o = oracle_before
    for (coll, rid), (version, data) in after.items():
        old = before.get((coll, rid))
        if old is not None and old[0] == version:
            continue
        if old is None:
            # a new record: its parent was the pusher's to write
            if coll in ("residents", "visits", "matters"):
                h = o.h.get(data["household_id"])
                agents_own = (coll == "matters" and who in AGENT_VILLAGE and data.get("assignee_id") == w.uid(who)
                              and o.place("households", h.data) in AGENT_VILLAGE[who]) if h else False
                assert h is not None and (o.sees(who, "households", h) or agents_own), \
                    f"{who} created {coll} {rid} on a household outside their authority"
            elif coll == "matter_events":
                m = o.m.get(data["matter_id"])
                assert m is not None and o.sees(who, "matters", m), f"{who} added an event to a matter outside scope"
            elif coll == "attachments":
                parents = {"households": o.h, "residents": o.res, "matters": o.m}
                p = parents.get(data["record_collection"], {}).get(data["record_id"])
                assert p is not None and o.sees(who, data["record_collection"], p), \
                    f"{who} attached to a record outside scope"
            else:
                assert coll != "households" or o.place(coll, data) in GRIDS[who], f"{who} made a household elsewhere"
            continue
        prev = {"households": o.h, "residents": o.res, "matters": o.m}.get(coll, {}).get(rid)
        if prev is None:
            continue      # events marked applied by staff decisions: not a non-staff write
        assert o.sees(who, coll, prev), f"{who} changed {coll} {rid}, which was outside their scope"
        old_place, new_place = o.place(coll, old[1]), o.place(coll, data)
        if old_place != new_place:
            assert {old_place, new_place} <= GRIDS[who], \
                f"{who} moved {coll} {rid} from {old_place} to {new_place} without holding both"
        if coll == "matters" and o.sensitive(prev) and not (data.get("category") in SENSITIVE_CATEGORIES
                                                             or data.get("line") == "xinfang"):
            raise AssertionError(f"{who} made the 信访 matter {rid} an ordinary one")


def check_visibility(w: World) -> None:
    o = Oracle(w)
    everything = {(coll, r.id): r for coll in DATA for r in w.records(coll)}
    for who in USERS:
        w.sync(who)
        held = {k for k in w.replicas[who] if k[0] in DATA}
        allowed = {k for k, r in everything.items() if o.sees(who, k[0], r)}
        extra, missing = held - allowed, allowed - held
        assert not extra, f"{who} holds records outside their scope: {sorted(extra)[:4]}"
        assert not missing, f"{who} lacks records of their scope: {sorted(missing)[:4]}"


def run(w: World, drawn: list[tuple[Any, ...]]) -> None:
    for s in drawn:
        who, muts = step(w, s)
        if not muts:
            continue
        before, oracle = snapshot(w), Oracle(w)
        results = w.t.push(who, *muts)
        w.log.append(f"{who} {s[0]} -> {[(r.status, r.error.code if r.error else None) for r in results]}")
        for r in results:
            if r.conflict_id and r.status == "conflict":
                w.conflicts.append(r.conflict_id)
        if who in NON_STAFF:
            check_authority(w, who, before, oracle)
        check_visibility(w)


# -- the template world, built once ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory: Any) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    path = backend.new_db(tmp_path_factory.mktemp("scope-property"), "template.db", keep=True)
    store = backend.open_store(path)
    store.migrate()
    t = build_town(store)
    install_catalogue(store)
    accounts.create_user(store, "worker4", PASSWORD, "grid_worker", [t.ids["g2"]], password_hash=password_hash())
    accounts.create_user(store, "agent2", PASSWORD, "proxy_agent", [t.ids["v2"]], password_hash=password_hash())
    accounts.create_user(store, "vstaff", PASSWORD, "staff", [t.ids["v1"]], password_hash=password_hash())
    # a starting town: households with residents in every grid, a matter delegated to each agent, a
    # 信访 matter, so that one step can already reach each kind of indirect path
    for grid, who in (("g1", "w1"), ("g1", "w1"), ("g2", "staff"), ("g3", "w3")):
        h = t.household(who, grid)
        t.push1(who, t.mut("residents", new_id(), {"household_id": h, "name": "住户成员"}))
    hs = [r[0] for r in store.conn.execute(f"SELECT id FROM households ORDER BY {backend.CREATION_ORDER}")]
    agent2 = store.user_by_username("agent2")
    assert agent2 is not None
    t.matter("w1", hs[0], assignee_id=t.actors["agent"].user_id, handling_mode="proxy")
    t.matter("w3", hs[3], assignee_id=agent2.id, handling_mode="proxy")
    t.matter("w1", hs[1], category="proxy.petition")
    # an open conflict on where a resident lives: staff moved her, worker1's phone (offline) moved her too
    res = store.conn.execute("SELECT id, version FROM residents WHERE household_id = ?", (hs[0],)).fetchone()
    assert t.push1("staff", t.mut("residents", res[0], {"household_id": hs[1]}, base=res[1])).status == "applied"
    r = t.push1("w1", t.mut("residents", res[0], {"household_id": hs[0], "name": "改了名"}, base=res[1]))
    assert r.status == "conflict", r
    tokens = dict(t.tokens)
    for key, username in (("w4", "worker4"), ("agent2", "agent2"), ("vstaff", "vstaff")):
        tokens[key] = accounts.login(store, username, PASSWORD, "phone").token
    store.close()
    yield path, dict(t.ids), tokens


_SNAPSHOTS: dict[str, Any] = {}


def _snapshot(db: str) -> Any:
    if db not in _SNAPSHOTS:
        with contextlib.closing(backend.open_store(db)) as s:
            _SNAPSHOTS[db] = backend.snapshot(s)
    return _SNAPSHOTS[db]


def world(template: tuple[str, dict[str, str], dict[str, str]], tmp: Path) -> World:
    path, ids, tokens = template
    if backend.POSTGRES:
        # one database for the test, refilled with the template's rows for each example (a
        # CREATE DATABASE per example costs a checkpoint)
        store = backend.open_store(backend.scratch_db())
        backend.reset_db(store, _snapshot(path))
    else:
        db = tmp / f"w-{new_id()}.db"
        shutil.copy(path, db)
        store = SQLiteStore(str(db))
    t = Town(store, ids=dict(ids))
    for key, token in tokens.items():       # the template's devices (a login hashes a password: slow)
        t.actors[key] = accounts.authenticate(store, token)
    w = World(t, {ids[g]: g for g in ("g1", "g2", "g3")})
    w.conflicts = [r[0] for r in store.conn.execute(f"SELECT id FROM conflicts WHERE status = 'open' "
                                                  f"ORDER BY {backend.CREATION_ORDER}")]
    check_visibility(w)
    return w


PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


def the_property(template: Any, tmp_path: Path, config: settings,
                 first: list[tuple[Any, ...]] | None = None) -> Any:
    """The property under ``config``: a fresh world per example, the drawn steps, the invariants
    (``first``: steps to try before any drawn ones)."""
    def prop(drawn: list[tuple[Any, ...]]) -> None:
        w = world(template, tmp_path)
        try:
            run(w, drawn)
        finally:
            w.store.close()
    if first is not None:
        prop = example(drawn=first)(prop)
    return config(given(drawn=steps)(prop))


def test_scope_holds_on_every_path(template: Any, tmp_path: Path) -> None:
    the_property(template, tmp_path, PROPERTY)()


# -- the property finds the findings when their fixes are reverted ------------------------------------------

def _no_check(*args: Any, **kwargs: Any) -> None:
    return None


# Each finding as the penetration test reported it, in the property's own steps over the starting
# town (households 0 and 1 in g1, 2 in g2, 3 in g3; the matter delegated to agent1 is on household 0;
# the open conflict is about where worker1's resident lives):
REPORTED = {
    "_check_move": [("move_household", "agent", 0, 2, 0)],          # agent1 re-homes its delegated household
    "_check_parent": [("matter", "w1", 3, 2, 0)],                    # worker1 files a 信访 matter in g3
    "_check_resolution": [("resolve", "w1", 0, 2, 3)],               # worker1 resolves into g3's household
}


@pytest.mark.parametrize("finding, check", [
    ("1: a delegated household moved into any grid", "_check_move"),
    ("2: a sensitive matter filed on any household", "_check_parent"),
    ("3: a resolution skips the checks of an update", "_check_resolution"),
])
@pytest.mark.parametrize("how", ["reported", "searched"])
def test_the_property_finds_the_findings_when_their_fixes_are_reverted(
        template: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finding: str, check: str, how: str) -> None:
    """``reported``: the invariants catch the finding in the steps of its report; ``searched``: random
    search finds it too, with no hint (derandomized: the same examples every run)."""
    monkeypatch.setattr(engine, check, _no_check)
    # no shrinking: the first failing example is proof enough, and shrinking a world costs minutes
    config = settings(PROPERTY, max_examples=1 if how == "reported" else 600,
                      phases=[Phase.explicit] if how == "reported" else [Phase.generate])
    prop = the_property(template, tmp_path, config, REPORTED[check] if how == "reported" else None)
    with pytest.raises(AssertionError) as caught:
        prop()
    assert "outside" in str(caught.value) or "moved" in str(caught.value) or "lacks" in str(caught.value), \
        f"finding {finding}: the property failed for another reason: {caught.value}"


def test_the_oracle_agrees_with_the_starting_town(template: Any, tmp_path: Path) -> None:
    """The oracle is no tautology: in the starting town each user sees a different, non-empty part."""
    w = world(template, tmp_path)
    held = {who: {k for k in w.replicas[who] if k[0] in DATA} for who in USERS}
    assert held["vstaff"] < held["staff"]                        # the 信访 matter is the difference
    petition = next(k for k in held["staff"] if k[0] == "matters"
                    and json.dumps(w.store.get("matters", k[1]).data).find("proxy.petition") >= 0)
    assert petition in held["w1"] and petition not in held["vstaff"]
    assert held["agent"] and held["agent2"] and not (held["agent"] & held["agent2"])
    assert held["w1"] and not (held["w1"] & held["w3"])
    w.store.close()
