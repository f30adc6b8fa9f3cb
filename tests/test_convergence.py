"""Convergence under offline edits, lost answers and replays: a property test of protocol v1.

Four phones (worker1 and worker2 on grid g1, the town's staff, and the village's proxy agent;
worker1's phone re-logs in now and then, linked by ``previous_device_id``) make random offline
edits: households and residents, concurrent edits of the same fields (phone, notes, head_name,
members_count …), tag adds/removes, deletes, visits (also re-sent under a new mid), matter status
moves (staff accept and dispatch, the assignee — a worker or the agent — moves on), households
moved between grids, invalid values and conflict resolutions; an admin now and then gives
worker2 a second grid or takes it away (its cursor expires). The phones sync in random orders; a
push's answer may be lost after the server committed it (the phone re-sends the very same
batch, maybe under its next linked device), a push may be lost before it arrives, pull pages may
be lost, another phone may push between two pages, page sizes vary, a phone may drop its
replica and pull from scratch (§5 after cursor_expired).

The phones are :class:`simclient.SimClient` (what the protocol says a phone does). Alongside
runs a *model* written from the protocol text (§4, §6), not from the engine: for every
mutation in server order it predicts the result (applied / merged / conflict / rejected with
code) and, for conflicts, the conflict record (kind, field, incoming and current values). What a
phone "saw" is its ``base``; a server write is seen by a base iff the base is newer than the
server position before the push that made it (pulls never happen during a push).

At the end, after everyone syncs without faults:
- every phone's replica equals its scope on the server (also checked after every clean pull);
- every mid has exactly one result and one ``mutation_log`` row, re-pushing anything gives the
  first answer again, append-only records exist once per id;
- every rejection is a ``conflicts`` record of kind ``rejected`` on its author's phone;
- every concurrent overlapping edit produced a conflict naming the field with both values (the
  incoming one and the current one it met), seen by everyone involved and by staff, and the
  final field values, tags (add-wins sets) and statuses are what the model says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st

from . import backend
from .conftest import PASSWORD, Town, build_town
from .simclient import CursorExpired, Ids, LostResponse, SimClient
from sync import accounts, engine, workflow
from sync.errors import SyncError
from sync.schema import COLLECTIONS, parse_at
from sync.scope import Actor
from sync.store import SQLiteStore

DEVICES = ("w1", "w2", "staff", "agent")
# more phones for worlds that want them (bench/faults): a second, unlinked phone of each user
EXTRA_DEVICES = {"w1b": "w1", "w2b": "w2", "staff2": "staff", "agent2": "agent"}
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
TICK = 10                                      # seconds between two edits anywhere
SKEW = {"w1": 0, "w2": 30, "staff": -20, "agent": 10,      # phone clocks disagree; multiples of TICK make ties
        "w1b": 20, "w2b": -10, "staff2": 0, "agent2": 30}
MAX_AT = datetime.max.replace(tzinfo=timezone.utc)   # a resolution is made "now": later than any edit

BAD_PHONE = "电话号码不详"
TAGS = ("独居老人", "低保户", "残疾人", "党员中心户")
POOLS: dict[str, tuple[Any, ...]] = {
    "head_name": ("王阿公", "李大妈", "张三"),
    "phone": ("13800000001", "13800000002", "0574-88880000", None),
    "notes": ("门前有狗", "独居", "腿脚不便", ""),
    "members_count": (1, 2, 3, 4),
    "name": ("王小明", "王小红", "李四"),
    "residence": ("resident", "away", "moved_out"),
    "title": ("屋顶漏雨", "路灯坏了", "医保咨询"),
    "urgency": ("normal", "urgent", "critical"),
}
EDITABLE = {"households": ("head_name", "phone", "notes", "members_count"),
            "residents": ("name", "phone", "notes", "residence"),
            "matters": ("title", "urgency")}
# What the model tracks and compares with the server at the end.
COMPARED = {"households": ("grid_id", "address", "head_name", "members_count", "phone", "notes", "tags"),
            "residents": ("household_id", "name", "phone", "notes", "residence", "tags"),
            "matters": ("household_id", "title", "urgency", "assignee_id", "status"),
            "visits": ("household_id", "worker_id", "narrative"),
            "matter_events": ("matter_id", "kind", "from", "to", "applied", "actor_id")}
APPEND_ONLY = ("visits", "matter_events")
# Which roles may do what (§3; a grid worker may not delete households, a proxy agent creates none).
AGENT = ("grid_worker", "proxy_agent", "staff")
MAY = {("households", "create"): ("grid_worker", "staff"), ("households", "update"): AGENT,
       ("households", "delete"): ("staff",),
       ("residents", "create"): AGENT, ("residents", "update"): AGENT, ("residents", "delete"): ("grid_worker", "staff"),
       ("visits", "create"): ("grid_worker", "staff"), ("matters", "create"): AGENT, ("matters", "update"): AGENT,
       ("matters", "delete"): (), ("matter_events", "create"): AGENT}


# ------------------------------------------------------------------------------------------------
# one database per example, cloned from a template town (logins hash passwords: do them once)


class Template:
    def __init__(self, store: SQLiteStore, town: Town, w1_devices: list[Actor],
                 extra: dict[str, Actor] | None = None, tokens: dict[str, str] | None = None) -> None:
        self.store = store
        self.town = town
        self.w1_devices = w1_devices   # worker1's phone and its re-logins, each linked to the previous
        self.extra = extra or {}       # EXTRA_DEVICES by name
        self.tokens = tokens or {}     # device id -> bearer token (for worlds that speak HTTP)
        self.rows: Any = None          # PostgreSQL: the store's rows (backend.snapshot), taken once

    def __repr__(self) -> str:
        return "Template(the town of conftest.build_town)"


def build_template(store: SQLiteStore) -> Template:
    """The conftest town in a migrated store, worker1's re-logins and the extra phones, signed in."""
    town = build_town(store)
    tokens = {town.actors[k].device_id: town.tokens[k] for k in DEVICES}
    devices = [town.actors["w1"]]
    for i in range(3):
        r = accounts.login(store, "worker1", PASSWORD, f"worker1's phone again {i}", devices[-1].device_id)
        devices.append(accounts.authenticate(store, r.token))
        tokens[r.device_id] = r.token
    assert len({d.origin for d in devices}) == 1, "re-logins with previous_device_id share one lineage"
    extra = {}
    for name, of in EXTRA_DEVICES.items():
        user = store.get("users", town.actors[of].user_id)
        assert user is not None
        r = accounts.register_device(store, user, f"{name}'s phone")
        extra[name] = accounts.authenticate(store, r.token)
        tokens[r.device_id] = r.token
    return Template(store, town, devices, extra, tokens)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    if backend.POSTGRES:
        store = backend.open_store(backend.new_db(tmp_path_factory.mktemp("convergence"), keep=True))
    else:
        store = SQLiteStore(":memory:")
    store.migrate()
    t = build_template(store)
    if backend.POSTGRES:
        t.rows = backend.snapshot(store)
    yield t
    store.close()


# ------------------------------------------------------------------------------------------------
# the model: protocol §4/§6 in server order


@dataclass
class FMeta:
    origin: str
    lo: int          # server position before the push that made the write: a base > lo has seen it
    at: datetime
    user: str = ""


@dataclass
class MRec:
    coll: str
    rid: str
    created_by: str
    data: dict[str, Any]
    meta: dict[str, FMeta] = field(default_factory=dict)
    tags: dict[str, list[tuple[str, int]]] = field(default_factory=dict)   # element -> add tags (origin, lo)
    deleted: bool = False
    version: int | None = None   # the server version, when a result told it (None: changed unseen since)
    last_user: str = ""          # who made the last change


@dataclass
class MConflict:
    kind: str
    coll: str
    rid: str
    author: str
    fields: dict[str, Any]
    resolved: bool = False
    involved: set[str] = field(default_factory=set)   # whose edits it involves: they all see it (§5)
    currents: dict[str, Any] = field(default_factory=dict)  # field conflicts: the server's values then


@dataclass
class Expect:
    status: str
    code: str | None = None
    changed: bool = False
    conflict_kind: str | None = None
    conflict_fields: dict[str, tuple[Any, Any]] | None = None   # field -> (incoming, current); None: not checked
    winner: dict[str, str] | None = None
    commit: Callable[[dict[str, Any]], None] = lambda r: None
    why: str = ""
    # the set's value stays but its record of adds changed: the server may answer merged and give
    # a new version, or not
    re_add: bool = False


def _reject(code: str, why: str) -> Expect:
    return Expect("rejected", code=code, why=why)


class Model:
    def __init__(self, town: Town) -> None:
        self.g1, self.g2 = town.ids["g1"], town.ids["g2"]
        # the grids of each grid worker (an admin may change them: their cursors then expire)
        self.grids = {town.actors["w1"].user_id: {self.g1}, town.actors["w2"].user_id: {self.g1}}
        self.recs: dict[tuple[str, str], MRec] = {}
        self.conflicts: dict[str, MConflict] = {}

    # -- scope (§3): staff of the town may write everything here; a grid worker their grid,
    #    plus what is delegated to them (a matter they are the active assignee of)
    def _grid(self, hid: str) -> str | None:
        h = self.recs.get(("households", hid))
        return h.data["grid_id"] if h else None

    def _assignees(self, hid: str) -> set[str]:
        return {m.data["assignee_id"] for m in self.recs.values()
                if m.coll == "matters" and m.data["household_id"] == hid and not m.deleted
                and m.data["assignee_id"] and workflow.delegation_active(m.data["status"])}

    def writable(self, a: Actor, coll: str, data: dict[str, Any], rid: str) -> bool:
        if a.role == "staff":
            return True
        grids = self.grids.get(a.user_id, set())    # a proxy agent has none: only what is delegated
        if coll == "households":
            return data["grid_id"] in grids or a.user_id in self._assignees(rid)
        if coll == "residents":
            hid = data["household_id"]
            return self._grid(hid) in grids or a.user_id in self._assignees(hid)
        if coll == "visits":
            return self._grid(data["household_id"]) in grids
        if coll == "matters":
            return self._grid(data["household_id"]) in grids or (
                data.get("assignee_id") == a.user_id and workflow.delegation_active(data.get("status") or "submitted"))
        raise AssertionError(coll)

    def _live(self, coll: str, rid: Any) -> MRec | None:
        r = self.recs.get((coll, rid))
        return r if r and not r.deleted else None

    # -- one mutation --------------------------------------------------------------------------
    def predict(self, a: Actor, m: dict[str, Any], lo: int) -> Expect:
        coll, rid, op, base, fields = m["collection"], m["id"], m["op"], m["base"], m["fields"]
        at = parse_at(m["at"]).astimezone(timezone.utc)
        if coll == "conflicts":
            return self._resolve(a, rid, fields, lo)
        rec = self.recs.get((coll, rid))
        if rec is not None and not self.writable(a, coll, rec.data, rid):
            # scope first: a record outside scope answers as one that does not exist (issue 12, finding 8)
            if op == "upsert" and base == 0:
                return _reject("id_collision", "create over a record outside scope")
            return _reject("forbidden", "outside scope: answered as unknown")
        if op == "delete":
            return self._delete(a, coll, rec, base, lo, at)
        if base == 0 and rec is None:
            return self._create(a, coll, rid, fields, lo, at)
        if coll in APPEND_ONLY:
            same = rec is not None and rec.created_by == a.user_id and all(
                rec.data.get(k) == v for k, v in fields.items())
            return Expect("applied") if same else _reject("id_collision", "same id, other content")
        if rec is None:
            return _reject("forbidden", "update of a record the server does not have (answered as outside scope)")
        if base == 0 and rec.created_by != a.user_id:
            return _reject("id_collision", "create over someone else's record")
        return self._update(a, rec, base, fields, lo, at)

    def _create(self, a: Actor, coll: str, rid: str, fields: dict[str, Any], lo: int, at: datetime) -> Expect:
        if a.role not in MAY[(coll, "create")]:
            return _reject("forbidden", f"{a.role} may not create {coll}")
        if fields.get("phone") == BAD_PHONE:
            return _reject("invalid_request", "bad phone")
        if any(f.required and fields.get(f.name) is None for f in COLLECTIONS[coll].fields):
            return _reject("invalid_request", "a required field is missing")
        if coll == "matter_events":
            return self._event(a, rid, fields, lo, at)
        data = {f.name: ([] if f.set_valued else None) for f in COLLECTIONS[coll].fields}
        data.update(fields)
        if coll in ("residents", "visits", "matters"):
            if not self._live("households", fields["household_id"]):
                return _reject("forbidden", "household is gone (answered as outside scope)")
        if coll == "visits":
            data["worker_id"] = a.user_id
        if coll == "matters":
            data.update(status="submitted", resolved_at=None, closed_at=None, raised_at=at)
        if not self.writable(a, coll, data, rid):
            return _reject("forbidden", "outside the actor's scope")

        def commit(r: dict[str, Any]) -> None:
            rec = MRec(coll, rid, a.user_id, data, last_user=a.user_id)
            for k in list(fields) + (["status", "resolved_at", "closed_at", "raised_at"] if coll == "matters" else []):
                rec.meta[k] = FMeta(a.origin, lo, at, a.user_id)
            if "tags" in fields:
                rec.tags = {x: [(a.origin, lo)] for x in fields["tags"]}
                data["tags"] = sorted(set(fields["tags"]))
            self.recs[(coll, rid)] = rec
        return Expect("applied", changed=True, commit=commit)

    def _event(self, a: Actor, rid: str, fields: dict[str, Any], lo: int, at: datetime) -> Expect:
        matter = self._live("matters", fields["matter_id"])
        if matter is None:
            return _reject("forbidden", "no such matter (answered as outside scope)")
        if not self.writable(a, "matters", matter.data, matter.rid):
            return _reject("forbidden", "matter outside scope")
        frm, to, cur = fields.get("from"), fields["to"], matter.data["status"]
        is_assignee = matter.data["assignee_id"] == a.user_id
        if cur == to:                                  # someone already made this very move
            if not (frm and frm != to and workflow.is_transition(frm, to)):
                return _reject("invalid_transition", f"already {to}")
            if not workflow.may_transition(frm, to, a.role, is_assignee):
                return _reject("forbidden", f"{a.role} may not {frm}->{to}")
            applied, status = False, "merged"
        elif workflow.is_transition(cur, to):
            if not workflow.may_transition(cur, to, a.role, is_assignee):
                return _reject("forbidden", f"{a.role} may not {cur}->{to}")
            applied, status = True, "applied"
        elif frm and frm != cur and workflow.is_transition(frm, to):
            if not workflow.may_transition(frm, to, a.role, is_assignee):
                return _reject("forbidden", f"{a.role} may not {frm}->{to}")
            applied, status = False, "conflict"
        else:
            return _reject("invalid_transition", f"{cur}->{to}")

        def commit(r: dict[str, Any]) -> None:
            data = {"matter_id": matter.rid, "kind": "status", "from": frm, "to": to, "applied": applied,
                    "actor_id": a.user_id}
            self.recs[("matter_events", rid)] = MRec("matter_events", rid, a.user_id, data)
            if status == "conflict":
                self.conflicts[r["conflict_id"]] = MConflict("transition", "matter_events", rid, a.user_id,
                                                             {"status": (to, cur)},
                                                             involved={a.user_id, matter.meta["status"].user})
            if applied:
                matter.data["status"] = to
                matter.meta["status"] = FMeta(a.origin, lo, at, a.user_id)
                matter.version = None
                matter.last_user = a.user_id
        return Expect(status, changed=True, commit=commit, conflict_kind="transition" if status == "conflict" else None,
                      conflict_fields={"status": (to, cur)} if status == "conflict" else None)

    def _unseen(self, fm: FMeta | None, base: int, origin: str) -> bool:
        """§6 rule 1: another device changed it after base (only the field's last change is kept)."""
        return fm is not None and fm.origin != origin and base <= fm.lo

    def _update(self, a: Actor, rec: MRec, base: int, fields: dict[str, Any], lo: int, at: datetime) -> Expect:
        if a.role not in MAY[(rec.coll, "update")]:
            return _reject("forbidden", "role")
        if not self.writable(a, rec.coll, rec.data, rec.rid):
            return _reject("forbidden", "outside the actor's scope")
        if fields.get("phone") == BAD_PHONE:
            return _reject("invalid_request", "bad phone")
        if rec.deleted:
            # §6: a record deleted since base is never brought back by an update
            cf = {k: (v, None) for k, v in fields.items() if k != "tags"}

            def commit_ud(r: dict[str, Any]) -> None:
                self.conflicts[r["conflict_id"]] = MConflict("update_deleted", rec.coll, rec.rid, a.user_id,
                                                             {k: v for k, v in fields.items()},
                                                             involved={a.user_id, rec.last_user})
            return Expect("conflict", conflict_kind="update_deleted", conflict_fields=cf, commit=commit_ud)
        if rec.coll == "matters" and "assignee_id" in fields and fields["assignee_id"] != rec.data["assignee_id"] \
                and a.role != "staff":
            return _reject("forbidden", "only staff dispatch")
        others = any(self._unseen(fm, base, a.origin) for fm in rec.meta.values())
        changes: dict[str, Any] = {}
        new_tags: dict[str, list[tuple[str, int]]] | None = None
        re_add = False
        conflicts: dict[str, tuple[Any, Any]] = {}
        winner: dict[str, str] = {}
        for name, incoming in fields.items():
            current = rec.data.get(name)
            fm = rec.meta.get(name)
            if name == "tags":
                # add-wins set: a remove takes away only the adds its device had seen
                tags = {x: list(t) for x, t in rec.tags.items()}
                for x in incoming.get("add", []):
                    tags.setdefault(x, []).append((a.origin, lo))
                for x in incoming.get("remove", []):
                    if x in tags:
                        tags[x] = [(o, v) for o, v in tags[x] if not (o == a.origin or base > v)]
                tags = {x: t for x, t in tags.items() if t}
                if sorted(tags) != sorted(current or []):
                    changes[name] = sorted(tags)
                # the adds on record changed though the value did not (a concurrent add re-recorded,
                # or the adds a remove had seen dropped while another device's add keeps the tag)
                re_add = name not in changes and tags != rec.tags
                new_tags = tags
                continue
            if incoming == current:
                continue
            if not self._unseen(fm, base, a.origin):
                changes[name] = incoming
                continue
            assert fm is not None
            conflicts[name] = (incoming, current)
            wins = at > fm.at
            winner[name] = "incoming" if wins else "current"
            if wins:
                changes[name] = incoming
        status = "conflict" if conflicts else "merged" if others and changes else "applied"

        def commit(r: dict[str, Any]) -> None:
            if conflicts:
                self.conflicts[r["conflict_id"]] = MConflict(
                    "field", rec.coll, rec.rid, a.user_id, {k: inc for k, (inc, _) in conflicts.items()},
                    involved={a.user_id} | {rec.meta[k].user for k in conflicts},
                    currents={k: cur for k, (_, cur) in conflicts.items()})
            for k, v in changes.items():
                rec.data[k] = v
                rec.meta[k] = FMeta(a.origin, lo, at, a.user_id)
            if new_tags is not None:
                rec.tags = new_tags
            if changes:
                rec.last_user = a.user_id
        return Expect(status, changed=bool(changes), conflict_kind="field" if conflicts else None,
                      conflict_fields=conflicts or None, winner=winner or None, commit=commit,
                      re_add=re_add and not changes and not conflicts)

    def _delete(self, a: Actor, coll: str, rec: MRec | None, base: int, lo: int, at: datetime) -> Expect:
        if coll in APPEND_ONLY:
            return _reject("invalid_request", "append-only")
        if rec is None:
            return _reject("forbidden", "no such record (answered as outside scope)")
        if a.role not in MAY[(coll, "delete")]:
            return _reject("forbidden", f"{a.role} may not delete {coll}")
        if not self.writable(a, coll, rec.data, rec.rid):
            return _reject("forbidden", "outside the actor's scope")
        if rec.deleted:
            return Expect("applied")
        changed = {k for k, fm in rec.meta.items() if self._unseen(fm, base, a.origin)}
        if changed:
            # §6: a record updated since base is not deleted by a stale delete
            def commit_d(r: dict[str, Any]) -> None:
                self.conflicts[r["conflict_id"]] = MConflict("delete", coll, rec.rid, a.user_id, {}, involved={
                    a.user_id} | {rec.meta[k].user for k in changed})
            return Expect("conflict", conflict_kind="delete",
                          conflict_fields={k: (None, rec.data.get(k)) for k in changed}, commit=commit_d)

        def commit(r: dict[str, Any]) -> None:
            self._tombstone(rec, a, lo, at)
        return Expect("applied", changed=True, commit=commit)

    def _tombstone(self, rec: MRec, a: Actor, lo: int, at: datetime) -> None:
        rec.deleted = True
        rec.meta["_deleted"] = FMeta(a.origin, lo, at, a.user_id)
        rec.last_user = a.user_id

    def _resolve(self, a: Actor, cid: str, fields: dict[str, Any], lo: int) -> Expect:
        c = self.conflicts.get(cid)
        if c is None:
            return _reject("not_found", "no such conflict")
        res = fields["resolution"]
        if not (c.author == a.user_id or a.role == "staff"):
            return _reject("forbidden", "not the author, not staff")
        if c.resolved:
            return _reject("already_resolved", "resolved before")
        if c.kind == "rejected" and res != "current":
            return _reject("invalid_request", "a rejection is only dismissed")
        if c.kind == "transition" and res == "incoming" and a.role != "staff":
            return _reject("forbidden", "only staff decide a status")
        if c.kind in ("transition", "delete") and res == "value":
            return _reject("invalid_request", "no value for this kind")
        target = self.recs.get((c.coll, c.rid))
        # a resolution is a write (issue 12, finding 3): one who may no longer write the record can
        # only dismiss the conflict, and then nothing is written
        dismiss_only = (c.kind in ("field", "update_deleted", "delete") and target is not None
                        and not self.writable(a, target.coll, target.data, target.rid))
        if dismiss_only and (res != "current" or c.kind == "delete" and res != "current"):
            return _reject("forbidden", "the resolver may no longer write the record")
        if c.kind == "transition" and res == "incoming" and target is not None:
            cur = self.recs[("matters", target.data["matter_id"])].data["status"]
            to, was = c.fields["status"]
            if not workflow.is_transition(cur, to) and not (cur == was and cur not in workflow.TERMINAL):
                return _reject("invalid_transition", f"the matter moved on to {cur}")

        def commit(r: dict[str, Any]) -> None:
            c.resolved = True
            if target is None or (res == "current" and c.kind != "field") or dismiss_only:
                return
            target.version = None
            if c.kind == "transition":
                matter = self.recs[("matters", target.data["matter_id"])]
                matter.data["status"] = target.data["to"]
                matter.meta["status"] = FMeta(a.origin, lo, MAX_AT, a.user_id)
                matter.version = None
                matter.last_user = a.user_id
                target.data["applied"] = True
            elif c.kind == "delete":
                if not target.deleted:
                    self._tombstone(target, a, lo, MAX_AT)
            elif c.kind in ("field", "update_deleted"):
                chosen = ({k: v for k, v in c.fields.items() if k != "tags"} if res == "incoming"
                          else dict(c.currents) if res == "current" else fields["value"])
                for k, v in chosen.items():
                    target.data[k] = v
                    target.meta[k] = FMeta(a.origin, lo, MAX_AT, a.user_id)
                target.last_user = a.user_id
                if c.kind == "update_deleted":
                    target.deleted = False
        return Expect("applied", changed=True, commit=commit)


# ------------------------------------------------------------------------------------------------
# the world: a server (the engine in-process), phones, a network that loses things


def note(what: str) -> None:
    """Count what the examples exercised (shown by --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(what)


def _b(x: Any) -> Any:
    return msgspec.to_builtins(x)


class World:
    """The server, the phones and the network. This one runs the engine in-process; a subclass
    may override ``push``, ``pull`` and ``close`` to reach a real server (bench/faults)."""

    def __init__(self, t: Template, store: SQLiteStore | None = None, devices: tuple[str, ...] = DEVICES,
                 salt: str = "gridbook") -> None:
        if store is None and backend.POSTGRES:
            # one database per test, refilled with the template's rows for each example
            store = backend.open_store(backend.scratch_db())
            backend.reset_db(store, t.rows if t.rows is not None else backend.snapshot(t.store))
        elif store is None:
            store = SQLiteStore(":memory:")
            t.store.conn.backup(store.conn)
        self.store = store
        self.town = t.town
        self.model = Model(t.town)
        self.ids = Ids(salt)
        self.tick = 0
        self.devices = devices
        self.actors = {**{name: t.town.actors[name] for name in DEVICES}, **t.extra}
        self.tokens = t.tokens
        self.w1_devices = list(t.w1_devices[1:])
        self.clients = {name: SimClient(name, clock=self._clock(name), new_id=self.ids) for name in devices}
        self.first: dict[tuple[str, str], dict[str, Any]] = {}     # (user, mid) -> the result first recorded
        self.mutations: dict[tuple[str, str], dict[str, Any]] = {}
        self.push_fault = 0      # 0 none, 1 the answer is lost after commit, 2 the request is lost
        self.pull_fault = False  # the next page is lost
        self.interleave: str | None = None   # a phone that pushes before the next page is served
        self.trace: list[str] = []
        self.user_of = {self.actors[n].user_id: n for n in reversed(devices)}
        self.seed_log = self._log_rows()

    def _log_rows(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.store.conn.execute("SELECT user_id, mid FROM mutation_log")]

    def close(self) -> None:
        self.store.close()

    def _clock(self, name: str) -> Callable[[], str]:
        def at() -> str:
            self.tick += 1
            return (T0 + timedelta(seconds=TICK * self.tick + SKEW[name])).isoformat()
        return at

    # -- transport ------------------------------------------------------------------------------
    def push(self, client: SimClient, mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fault, self.push_fault = self.push_fault, 0
        actor = self.actors[client.name]
        self.trace.append(f"push {client.name} {len(mutations)} fault={fault}")
        if client.inflight is mutations and client.resends:
            note("re-push of a batch after a lost answer")
        if fault == 2:
            raise LostResponse("request lost")
        lo = self.store.current_seq()
        results = self.send_push(actor, client, mutations, lo)
        self.record(actor, client.name, mutations, results, lo)
        if fault == 1:
            raise LostResponse("answer lost")
        return results

    def send_push(self, actor: Actor, client: SimClient, mutations: list[dict[str, Any]],
                  lo: int) -> list[dict[str, Any]]:
        """The server applies a push (``lo``: its position before) and answers with the results."""
        body = json.dumps({"protocol": 1, "mutations": mutations}).encode()
        return [_b(r) for r in engine.push(self.store, actor, body).results]

    def record(self, actor: Actor, name: str, mutations: list[dict[str, Any]], results: list[dict[str, Any]],
               lo: int) -> None:
        """Check the results of a push the server applied (``lo``: its position before) with the model."""
        for m, r in zip(mutations, results):
            key = (actor.user_id, m["mid"])
            if key in self.first:
                assert r == self.first[key], f"re-push of {m} answered {r}, first answer was {self.first[key]}"
                continue
            self.first[key] = r
            self.mutations[key] = m
            self.check(actor, name, m, r, lo)

    def pull(self, client: SimClient, cursor: str | None, limit: int) -> dict[str, Any]:
        fault, self.pull_fault = self.pull_fault, False
        if self.interleave and cursor is not None:
            # another phone pushes while this one is between two pages
            other, self.interleave = self.clients[self.interleave], None
            note("a push between two pages of a pull")
            try:
                other.push(self)
            except LostResponse:
                pass
        page = self.fetch_page(client, cursor, limit)
        keys = [(c["collection"], c["id"]) for c in page["changes"]]
        assert len(keys) == len(set(keys)), "a record appears at most once per page"
        assert len(keys) <= limit
        if fault:
            raise LostResponse("page lost")
        return page

    def fetch_page(self, client: SimClient, cursor: str | None, limit: int) -> dict[str, Any]:
        """One pull page from the server; :class:`CursorExpired` for 410 cursor_expired."""
        try:
            return _b(engine.pull(self.store, self.actors[client.name], cursor, limit))  # type: ignore[no-any-return]
        except SyncError as e:
            if e.code == "cursor_expired":
                note("cursor expired: the phone resyncs from scratch")
                raise CursorExpired() from None
            raise

    def snapshot(self, name: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The actor's whole scope now, from no cursor."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        cursor = None
        while True:
            page = _b(engine.pull(self.store, self.actors[name], cursor, 1000))
            for c in page["changes"]:
                assert not c.get("removed") and not c.get("deleted"), f"a snapshot holds no tombstones: {c}"
                out[(c["collection"], c["id"])] = c["data"]
            if not page["more"]:
                return out
            cursor = page["cursor"]

    # -- checking one result against the model ---------------------------------------------------
    def check(self, actor: Actor, name: str, m: dict[str, Any], r: dict[str, Any], lo: int) -> None:
        exp = self.model.predict(actor, m, lo)
        what = f"{name} pushed {json.dumps(m, ensure_ascii=False)} -> {r}; model expected {exp.status} " \
               f"{exp.code or ''} ({exp.why})"
        self.trace.append(f"  {name} {m['op']} {m['collection']} {m['id'][:8]} {m['fields']} base={m['base']} "
                          f"-> {r['status']} {r.get('error', {}).get('code', '')}")
        assert r["status"] == exp.status or (exp.re_add and r["status"] == "merged"), what
        note(f"{m['collection']}{' ' + '+'.join(sorted(m['fields'])) if m['op'] == 'upsert' and m['base'] else ''}"
             f"{' delete' if m['op'] == 'delete' else ''}: {r['status']} {exp.conflict_kind or exp.code or ''}")
        if exp.status == "rejected":
            assert r["error"]["code"] == exp.code, what
            c = self.store.get("conflicts", r["conflict_id"])
            assert c is not None and c.data["kind"] == "rejected", f"{what}: no rejected record in conflicts"
            assert c.data["author_id"] == actor.user_id and c.data["mutation"]["mid"] == m["mid"], what
            assert c.data["error"]["code"] == exp.code, what
            self.model.conflicts[r["conflict_id"]] = MConflict("rejected", m["collection"], m["id"], actor.user_id, {},
                                                               involved={actor.user_id})
            return
        target = self.model.recs.get((m["collection"], m["id"]))
        if exp.changed:
            assert r["version"] > lo, f"{what}: a change needs a new version"
        elif target is not None and target.version is not None and not exp.re_add:
            assert r["version"] == target.version, f"{what}: nothing changed, yet version {target.version} moved"
        if exp.conflict_kind:
            c = self.store.get("conflicts", r.get("conflict_id") or "")
            assert c is not None, f"{what}: no conflict record"
            d = c.data
            assert d["kind"] == exp.conflict_kind and d["status"] == "open", f"{what}: {d}"
            assert d["author_id"] == actor.user_id and d["mutation"]["mid"] == m["mid"], f"{what}: {d}"
            if exp.conflict_kind != "transition":
                assert (d["collection"], d["record_id"]) == (m["collection"], m["id"]), f"{what}: {d}"
            got = d["fields"] or {}
            want = exp.conflict_fields or {}
            if exp.conflict_kind in ("field", "transition", "delete"):
                assert set(got) == set(want), f"{what}: conflict names {sorted(got)}, expected {sorted(want)}"
            for k, (incoming, current) in want.items():
                assert k in got, f"{what}: the conflict does not name {k}: {d}"
                assert got[k]["incoming"] == incoming and got[k]["current"] == current, \
                    f"{what}: conflict on {k} holds {got[k]}, expected incoming {incoming!r}, current {current!r}"
            for k, w in (exp.winner or {}).items():
                assert got[k]["winner"] == w, f"{what}: winner of {k} is {got[k]['winner']}, expected {w}"
        else:
            assert r.get("conflict_id") is None, what
        exp.commit(r)
        target = self.model.recs.get((m["collection"], m["id"]))
        if exp.changed and target is not None:
            target.version = r["version"]
        elif exp.re_add and target is not None:
            target.version = None

    # -- the program ---------------------------------------------------------------------------
    def sync(self, name: str, push_fault: int = 0, pull_fault: bool = False, limit: int = 500,
             interleave: str | None = None) -> bool:
        self.push_fault, self.pull_fault, self.interleave = push_fault, pull_fault, interleave
        c = self.clients[name]
        ok = c.sync(self, limit)
        self.push_fault, self.pull_fault, self.interleave = 0, False, None
        if ok:
            # after a clean pull nothing happened on the server: the replica is exactly the scope
            assert_same(c.live(), self.snapshot(name), f"{name} after a clean pull")
        return ok

    def step(self, kind: str, dev: str, a: int, b: int, c: int, d: int) -> None:
        cl = self.clients[dev]
        me = self.actors[dev]
        self.trace.append(f"step {kind} {dev} {a} {b} {c} {d}")

        def pick(coll: str, i: int, where: Callable[[dict[str, Any]], bool] = lambda r: True) -> dict[str, Any] | None:
            # mostly the same few records, so that phones edit the same things concurrently
            recs = [r for _, r in sorted(cl.view(coll).items()) if where(r)]
            return recs[i % len(recs) if i > 5 else i % min(2, len(recs))] if recs else None

        if kind == "household":
            grid = self.town.ids["g2"] if dev == "staff" and a % 4 == 0 else self.town.ids["g1"]
            cl.create("households", {"grid_id": grid, "address": f"杖锡村上岙{b}号",
                                     "head_name": POOLS["head_name"][a % 3], "phone": POOLS["phone"][b % 4],
                                     "members_count": c % 4 + 1, "tags": [TAGS[d % 4]] if d < 4 else []})
        elif kind == "resident":
            h = pick("households", a)
            if h:
                cl.create("residents", {"household_id": h["id"], "name": POOLS["name"][b % 3],
                                        "residence": "resident", "tags": [TAGS[c % 4]] if c < 2 else []})
        elif kind == "edit":
            coll = ("households", "residents", "matters")[a % 3]
            r = pick(coll, b)
            if r:
                name = EDITABLE[coll][c % len(EDITABLE[coll])]
                cl.update(coll, r["id"], {name: POOLS[name][d % len(POOLS[name])]})
        elif kind == "clash":
            # this phone and the next edit the same record offline: the same field to different values,
            # or the same matter to a new status
            other = self.clients[self.next_device(dev)]
            coll = ("households", "residents", "matters", "matters")[a % 4]
            shared = sorted(set(cl.view(coll)) & set(other.view(coll)))
            if shared:
                rid = shared[b % len(shared)]
                if a % 4 < 3:
                    name = EDITABLE[coll][c % len(EDITABLE[coll])]
                    pool = POOLS[name]
                    cl.update(coll, rid, {name: pool[d % len(pool)]})
                    other.update(coll, rid, {name: pool[(d + 1) % len(pool)]})
                else:
                    for i, phone in enumerate((cl, other)):
                        frm = phone.view("matters")[rid].get("status") or "submitted"
                        tos = sorted({t for (f, t) in workflow.TRANSITIONS if f == frm})
                        if tos:
                            phone.create("matter_events", {"matter_id": rid, "kind": "status", "from": frm,
                                                           "to": tos[(c + i * d) % len(tos)], "note": ""})
        elif kind == "tags":
            coll = ("households", "residents")[a % 2]
            r = pick(coll, b)
            if r:
                have = set(r.get("tags") or [])
                add = [TAGS[c % 4]] if TAGS[c % 4] not in have else []
                remove = [TAGS[d % 4]] if TAGS[d % 4] in have and TAGS[d % 4] not in add else []
                if add or remove:
                    cl.update(coll, r["id"], {"tags": {"add": add, "remove": remove}})
        elif kind == "delete":
            coll = ("households", "residents")[a % 2]
            r = pick(coll, b)
            if r:
                cl.delete(coll, r["id"])
        elif kind == "visit":
            h = pick("households", a)
            if h:
                cl.create("visits", {"household_id": h["id"], "visited_at": cl.clock(), "narrative": f"走访{b}"})
        elif kind == "revisit":
            mine = [m for m in cl.sent if m["collection"] == "visits" and m["base"] == 0]
            if mine:
                m = mine[a % len(mine)]
                cl.queue("visits", m["id"], dict(m["fields"]), base=0)   # same record, new mid
        elif kind == "matter":
            h = pick("households", a)
            if h:
                cl.create("matters", {"household_id": h["id"], "title": POOLS["title"][b % 3]})
        elif kind == "move":
            mt = pick("matters", a)
            if mt:
                frm = mt.get("status") or "submitted"
                tos = sorted({t for (f, t) in workflow.TRANSITIONS if f == frm})
                if tos:
                    cl.create("matter_events", {"matter_id": mt["id"], "kind": "status", "from": frm,
                                                "to": tos[b % len(tos)], "note": ""})
        elif kind == "assign":
            st_cl = self.clients["staff"]
            mt = sorted(st_cl.view("matters").values(), key=lambda r: r["id"])
            if mt:
                who = self.actors[("w1", "w2", "agent")[b % 3]].user_id
                st_cl.update("matters", mt[a % len(mt)]["id"], {"assignee_id": who})
        elif kind == "regrid":
            st_cl = self.clients["staff"]
            hs = sorted(st_cl.view("households").values(), key=lambda r: r["id"])
            if hs:
                h = hs[a % len(hs)]
                other = self.town.ids["g2"] if h["grid_id"] == self.town.ids["g1"] else self.town.ids["g1"]
                st_cl.update("households", h["id"], {"grid_id": other})
        elif kind == "bad":
            h = pick("households", a)
            if h:
                cl.update("households", h["id"], {"phone": BAD_PHONE})
        elif kind == "resolve":
            cs = [r for r in sorted(cl.view("conflicts").values(), key=lambda r: r["version"])
                  if r["status"] == "open" and (r["author_id"] == me.user_id or me.role == "staff")]
            if cs:
                cf = cs[a % len(cs)]
                kind_ = cf["kind"]
                options = {"rejected": ["current"], "transition": ["current", "incoming"] if me.role == "staff"
                           else ["current"], "delete": ["current", "incoming"]}.get(kind_, ["current", "incoming", "value"])
                fields = cf["fields"] or {}
                plain = [k for k in fields if k in POOLS]
                if "value" in options and len(fields) != 1 or len(plain) != 1:
                    options = [o for o in options if o != "value"]
                res = options[b % len(options)]
                value = None
                if res == "value":
                    value = {plain[0]: POOLS[plain[0]][c % len(POOLS[plain[0]])]}
                cl.resolve(cf["id"], res, value)
        elif kind == "sync":
            other = self.next_device(dev) if d % 4 == 3 else None
            self.sync(dev, push_fault=(0, 0, 1, 2)[a % 4], pull_fault=b % 4 == 3, limit=(1, 2, 3, 7, 500)[c % 5],
                      interleave=other)
        elif kind == "areas":
            # an admin gives worker2 a second grid, or takes it away: worker2's cursor expires (§5)
            w2 = self.actors["w2"]
            grids = self.model.grids[w2.user_id]
            new = {self.town.ids["g1"]} if len(grids) == 2 else {self.town.ids["g1"], self.town.ids["g2"]}
            accounts.update_user(self.store, w2.user_id, areas=sorted(new))
            self.model.grids[w2.user_id] = new
            for name, actor in list(self.actors.items()):   # every phone of worker2 learns its new areas
                if actor.user_id == w2.user_id:
                    self.actors[name] = accounts.authenticate(self.store, self.tokens[actor.device_id])
            self.trace.append(f"  worker2's grids are now {len(new)}")
        elif kind == "resync":
            # §5 after cursor_expired (or a reinstall that kept the outbox): clear the replica, pull from scratch
            cl.replica.clear()
            cl.orphans.clear()
            cl.cursor = None
        elif kind == "relogin":
            if self.w1_devices:
                # the same phone signs in again (token lost, storage kept): outbox and in-flight batch go on
                self.actors["w1"] = self.w1_devices.pop(0)
        else:
            raise AssertionError(kind)

    def next_device(self, dev: str) -> str:
        return self.devices[(self.devices.index(dev) + 1) % len(self.devices)]

    def finish(self) -> None:
        for _ in range(2):
            for name in self.devices:
                self.sync(name)
        for name, c in self.clients.items():
            assert not c.outbox and not c.inflight and not c.orphans, name
            assert_same(c.live(), self.snapshot(name), f"{name} at the end")
        self.check_exactly_once()
        self.check_final_state()

    def check_exactly_once(self) -> None:
        # every mutation of every phone has its one result, the one the server recorded first
        for name, c in self.clients.items():
            user = self.actors[name].user_id
            for m in c.sent:
                assert m["mid"] in c.results, f"{name}: {m} never got a result"
                assert c.results[m["mid"]] == self.first[(user, m["mid"])], name
        rows = [r for r in self._log_rows() if r not in self.seed_log]
        assert len(rows) == len(set(rows)) == len(self.first), "one mutation_log row per mid"
        assert set(rows) == set(self.first)
        # a whole replay of everyone's history changes nothing and answers as the first time
        seq = self.store.current_seq()
        for name, c in self.clients.items():
            for i in range(0, len(c.sent), 200):
                batch = c.sent[i:i + 200]
                body = json.dumps({"protocol": 1, "mutations": batch}).encode()
                again = [_b(r) for r in engine.push(self.store, self.actors[name], body).results]
                assert again == [self.first[(self.actors[name].user_id, m["mid"])] for m in batch], name
        assert self.store.current_seq() == seq, "a replay changed the database"
        # append-only records exist once per id, however often they were sent
        for coll in APPEND_ONLY:
            n = self.store.conn.execute(f"SELECT count(*) FROM {coll}").fetchone()[0]
            assert n == sum(1 for (c, _) in self.model.recs if c == coll), coll
        # every rejection is visible to its author
        for (user, mid), r in self.first.items():
            if r["status"] == "rejected":
                name = self.user_of[user]
                got = self.clients[name].replica.get(("conflicts", r["conflict_id"]))
                assert got is not None and got["kind"] == "rejected" and got["mutation"]["mid"] == mid, \
                    f"{name} cannot see the rejection of {mid}"

    def check_final_state(self) -> None:
        for (coll, rid), rec in self.model.recs.items():
            s = self.store.get(coll, rid)
            assert s is not None, (coll, rid)
            assert s.deleted == rec.deleted, f"{coll} {rid}: deleted {s.deleted}, model says {rec.deleted}"
            for k in COMPARED[coll]:
                want = sorted(rec.tags) if k == "tags" else rec.data.get(k)
                assert s.data.get(k) == want, f"{coll} {rid} {k}: server has {s.data.get(k)!r}, model {want!r}"
        names = {self.actors[n].user_id: n for n in reversed(self.devices)}
        for cid, c in self.model.conflicts.items():
            s = self.store.get("conflicts", cid)
            assert s is not None and (s.data["status"] == "resolved") == c.resolved, cid
            # §5: conflicts reach everyone whose edits they involve, and the staff of the area
            for user in c.involved | {self.actors["staff"].user_id}:
                if user in names:
                    assert ("conflicts", cid) in self.clients[names[user]].replica, \
                        f"{names[user]} does not see the {c.kind} conflict {cid} on {c.coll} {c.rid}: {s.data}"


def assert_same(replica: dict[Any, Any], server: dict[Any, Any], what: str) -> None:
    if replica == server:
        return
    missing = sorted(set(server) - set(replica))
    extra = sorted(set(replica) - set(server))
    stale = sorted(k for k in set(server) & set(replica) if server[k] != replica[k])
    detail = [f"{k}: phone v{replica[k].get('version')} server v{server[k].get('version')}" for k in stale]
    raise AssertionError(f"{what}: replica differs from the server: missing {missing}, extra {extra}, "
                         f"stale {detail}")


# ------------------------------------------------------------------------------------------------

KINDS = ("household", "household", "resident", "clash", "clash", "clash", "edit", "edit", "edit", "edit", "tags", "tags", "tags",
         "delete", "visit", "revisit", "matter", "move", "move", "assign", "regrid", "bad",
         "resolve", "resolve", "resolve", "sync", "sync", "sync", "sync", "sync", "relogin", "resync", "areas")
small = st.integers(0, 7)
steps = st.tuples(st.sampled_from(KINDS), st.sampled_from(DEVICES), small, small, small, small)


def run(t: Template, program: list[tuple[str, str, int, int, int, int]], world: World | None = None) -> None:
    w = world or World(t)
    try:
        # a starting point everyone has: two households, a resident, a matter
        w.step("household", "w1", 1, 1, 1, 0)
        w.step("household", "w1", 2, 2, 2, 1)
        w.step("resident", "w1", 0, 0, 0, 0)
        w.step("matter", "w1", 0, 0, 0, 0)
        for name in w.devices:
            w.sync(name)
        for s in program:
            w.step(*s)
        w.finish()
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- trace ---\n" + "\n".join(w.trace[-120:])) from None
    finally:
        w.close()


@settings(max_examples=100, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rounds=st.lists(st.lists(steps, min_size=2, max_size=10), min_size=3, max_size=20))
# found and shrunk by this test: worker2's concurrent add of a tag worker1 had added is lost to
# worker1's later remove (see test_a_concurrent_add_of_a_present_tag_survives_a_remove)
@example(rounds=[[("tags", "w1", 1, 0, 1, 0), ("tags", "w2", 1, 0, 1, 0), ("sync", "w1", 0, 0, 0, 0),
                  ("tags", "w1", 1, 0, 1, 1), ("sync", "w2", 0, 0, 0, 0)]])
def test_phones_converge_exactly_once_and_keep_every_conflict(
        template: Template, rounds: list[list[tuple[str, str, int, int, int, int]]]) -> None:
    run(template, [s for r in rounds for s in r])


# ------------------------------------------------------------------------------------------------
# minimal reproductions of what the property test found


def test_a_concurrent_add_of_a_present_tag_survives_a_remove(town: Town) -> None:
    """§6 set-valued fields: "when one device adds what another removes, the add wins".

    worker1 adds a tag; worker2, who has not seen that, adds the same tag (nothing to change on the
    server); worker1, who has not seen worker2's add, removes it. worker2's add and worker1's
    remove are concurrent, so the tag must stay. (Found by the property test above.)
    """
    hid = town.household("w1", tags=[])
    v0 = town.version("households", hid)
    r1 = town.push1("w1", town.mut("households", hid, {"tags": {"add": ["低保户"]}}, base=v0))
    assert r1.status == "applied" and r1.version is not None
    r2 = town.push1("w2", town.mut("households", hid, {"tags": {"add": ["低保户"]}}, base=v0))
    assert r2.status in ("applied", "merged")
    r3 = town.push1("w1", town.mut("households", hid, {"tags": {"remove": ["低保户"]}}, base=r1.version))
    assert r3.status != "rejected"
    rec = town.store.get("households", hid)
    assert rec is not None
    assert rec.data["tags"] == ["低保户"], "worker2's concurrent add lost to a remove that never saw it"
