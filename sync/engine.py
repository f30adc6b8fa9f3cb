"""The sync engine: push (protocol §4, merge rules §6) and pull (§5).

``push(store, actor, body)`` decodes a request, applies it as one write transaction and returns
one result per mutation; ``pull(store, actor, cursor, limit)`` returns a page of the change
feed. Neither knows about HTTP: the server decodes nothing but the transport.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Literal

Status = Literal["applied", "merged", "conflict", "rejected"]

import msgspec

from . import cursor as cursors
from . import blobs, merge, proxy, workflow
from .errors import MutationRejected, SyncError
from .merge import Edit
from .protocol import (MAX_MUTATIONS, PROTOCOL_VERSION, Change, MutationIn, PullResponse, PushRequest,
                       PushResponse, PushResult, push_decoder)
from .schema import COLLECTIONS, PUSHABLE, Collection, blob_refs, is_uuid, parse_at, validate_fields
from .scope import (HOUSEHOLD_LINKED, SENSITIVE_CHAIN_LEVELS, SENSITIVE_KEY, Actor, area_keys, conflict_keys,
                    delegation_keys, mask_for, matter_sensitive, may_write_data, scope_hash, user_keys,
                    user_record_keys, visible)
from .store import AreaTree, SQLiteStore, StoredRecord, iso, utcnow

STAFF_ROLES = ("staff", "admin")
# The largest version a phone's JavaScript counts exactly (2**53 - 1): any base above it is no version.
MAX_VERSION = (1 << 53) - 1

# Who may create / update / delete records of each collection (scope is checked separately).
PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # areas are never deleted over sync: a deleted area would change scopes without a change in the feed
    "areas": {"create": ("admin",), "update": ("admin",), "delete": ()},
    "categories": {"create": ("admin",), "update": ("admin",), "delete": ("admin",)},
    "households": {"create": ("grid_worker", "staff", "admin"),
                   "update": ("grid_worker", "proxy_agent", "staff", "admin"),
                   "delete": ("staff", "admin")},
    "residents": {"create": ("grid_worker", "proxy_agent", "staff", "admin"),
                  "update": ("grid_worker", "proxy_agent", "staff", "admin"),
                  "delete": ("grid_worker", "staff", "admin")},
    # proxy agents see no visits (protocol §3), so they record none; feedback is a matter event
    "visits": {"create": ("grid_worker", "staff", "admin"), "update": (), "delete": ()},
    "matters": {"create": ("grid_worker", "proxy_agent", "staff", "admin"),
                "update": ("grid_worker", "proxy_agent", "staff", "admin"),
                "delete": ("admin",)},
    "matter_events": {"create": ("grid_worker", "proxy_agent", "staff", "admin"), "update": (), "delete": ()},
    "attachments": {"create": ("grid_worker", "proxy_agent", "staff", "admin"), "update": (), "delete": ()},
}


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7) for records the server creates (conflicts)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def area_tree(store: SQLiteStore) -> AreaTree:
    """The area tree, cached on the store until an area changes."""
    v = store.areas_version()
    cached = getattr(store, "_tree_cache", None)
    if cached and cached[0] == v:
        return cached[1]  # type: ignore[no-any-return]
    tree = AreaTree.load(store.all_areas())
    store._tree_cache = (v, tree)  # type: ignore[attr-defined]
    return tree


# ----------------------------------------------------------------------------------------------
# push


@dataclass
class _Ctx:
    store: SQLiteStore
    actor: Actor
    tree: AreaTree
    keys: frozenset[str]
    now: datetime
    now_iso: str
    touched_areas: bool = False
    results_by_record: dict[str, Any] = field(default_factory=dict)


def decode_push(body: bytes) -> PushRequest:
    """Read the envelope; anything unreadable is a whole-request ``invalid_request`` with a path."""
    try:
        req = push_decoder.decode(body)
    except msgspec.ValidationError as e:
        raise SyncError("invalid_request", f"The push request is not valid: {e}", {"reason": str(e)}) from None
    except msgspec.DecodeError as e:
        raise SyncError("invalid_request", f"The push body is not JSON: {e}", {"path": "$"}) from None
    except UnicodeDecodeError:
        # msgspec raises this (not a DecodeError) for bytes that are not UTF-8 inside a string.
        raise SyncError("invalid_request", "The push body is not valid UTF-8.", {"path": "$"}) from None
    except RecursionError:
        raise SyncError("invalid_request", "The push body is nested too deeply to be a push.", {"path": "$"}) from None
    if req.protocol != PROTOCOL_VERSION:
        raise SyncError("invalid_request", f"This server speaks protocol {PROTOCOL_VERSION}; "
                        f"the request says {req.protocol} - at `$.protocol`", {"path": "$.protocol"})
    if len(req.mutations) > MAX_MUTATIONS:
        raise SyncError("too_large", f"At most {MAX_MUTATIONS} mutations per request; "
                        f"this one has {len(req.mutations)}. Send the rest in another request.",
                        {"max_mutations": MAX_MUTATIONS})
    return req


def push(store: SQLiteStore, actor: Actor, body: bytes | PushRequest, now: datetime | None = None) -> PushResponse:
    """Apply a push request as one transaction; one result per mutation, in order."""
    req = body if isinstance(body, PushRequest) else decode_push(body)
    # Pushes that arrive while another is being written join the next transaction together (group
    # commit): one fsync for the lot, each push still all or nothing on its own (store.grouped).
    return store.grouped(lambda: _push(store, actor, req, now or now_utc()))


def _push(store: SQLiteStore, actor: Actor, req: PushRequest, received: datetime) -> PushResponse:
    results: list[PushResult] = []
    with store.transaction():
        tree = area_tree(store)
        ctx = _Ctx(store, actor, tree, user_keys(actor, tree), received, iso(received))
        logged_before = _prefetch(store, actor, req.mutations)
        seen: set[str] = set()
        for index, m in enumerate(req.mutations):
            if m.mid in seen:
                # Refused and shown to the author like any rejection, but nothing is logged under
                # this mid (the first mutation's result stays the one a retry gets), and the
                # conflict id is derived from the batch position, so a retried batch adds nothing.
                cid = str(uuid.uuid5(_DUP_NS, f"{actor.user_id}:{m.mid}:{index}"))
                results.append(_reject(ctx, m, MutationRejected(
                    "invalid_request", "mid: this mid appears earlier in the same batch"), cid))
                continue
            seen.add(m.mid)
            logged = logged_before.get(m.mid) if isinstance(m.mid, str) else None
            if logged is not None:
                results.append(msgspec.convert(logged, PushResult))
                continue
            try:
                with store.savepoint():
                    result = _apply(ctx, m)
            except MutationRejected as e:
                result = _reject(ctx, m, e)
            if ctx.touched_areas:
                ctx.tree = area_tree(store)
                ctx.keys = user_keys(actor, ctx.tree)
                ctx.touched_areas = False
            store.log_result(actor.user_id, m.mid, actor.device_id, msgspec.to_builtins(result), ctx.now_iso)
            results.append(result)
        # outbox_depth is a hint for the sync-health view: a value no outbox can have is ignored,
        # never a reason to fail the push (a 30-digit number does not fit an SQLite integer).
        depth = req.outbox_depth if req.outbox_depth is not None and 0 <= req.outbox_depth <= 10 ** 9 else None
        store.touch_device(actor.device_id, "last_push_at", ctx.now_iso, outbox_depth=depth)
    return PushResponse(results=results, server_time=iso(now_utc()))


def _prefetch(store: SQLiteStore, actor: Actor, mutations: list[MutationIn]) -> dict[str, dict[str, Any]]:
    """Read what a batch will need in a few queries instead of a few per mutation (issue 13): the
    results already logged for its mids, its records, and the households and matters they hang off.
    Returns the logged results by mid."""
    by_coll: dict[str, list[str]] = {}
    for m in mutations:
        if isinstance(m.collection, str) and m.collection in COLLECTIONS and isinstance(m.id, str):
            by_coll.setdefault(m.collection, []).append(m.id.lower())
        if isinstance(m.fields, dict):
            for name, coll in (("household_id", "households"), ("matter_id", "matters")):
                v = m.fields.get(name)
                if isinstance(v, str):
                    by_coll.setdefault(coll, []).append(v)
    for coll, ids in by_coll.items():
        store.prefetch(coll, ids)
    return store.logged_results(actor.user_id, [m.mid for m in mutations if isinstance(m.mid, str)])


def _err(code: str, message: str) -> Any:
    from .protocol import MutationError
    return MutationError(code=code, message=message)


_DUP_NS = uuid.UUID("6f1c2d0e-9a57-4c1b-8f3e-2b7d5a9c4e10")


def _reject(ctx: _Ctx, m: MutationIn, e: MutationRejected, cid: str | None = None) -> PushResult:
    """Store a rejection where its author (and their staff) can see it, and say why."""
    rid = m.id if isinstance(m.id, str) and len(m.id) <= 100 else None
    if cid is not None and ctx.store.get("conflicts", cid) is not None:
        return PushResult(mid=m.mid, status="rejected", error=_err(e.code, e.message), conflict_id=cid,
                          id=rid if rid and is_uuid(rid) else None)
    cid = cid or uuid7()
    area = None
    if isinstance(m.collection, str) and m.collection in HOUSEHOLD_LINKED and rid and is_uuid(rid):
        target = ctx.store.get(m.collection, rid.lower())
        # only a record the author may see gives the rejection its place (finding 8: no oracle)
        if target is not None and visible(ctx.keys, target.keys):
            area = _area_of(ctx, m.collection, target.data)
    mutation = _mutation_json(m)
    data = {"kind": "rejected", "collection": m.collection if isinstance(m.collection, str) else None,
            "record_id": rid, "mutation": mutation, "fields": None,
            "error": {"code": e.code, "message": e.message}, "author_id": ctx.actor.user_id,
            "device_id": ctx.actor.device_id, "involved": [ctx.actor.user_id], "area_id": area,
            "status": "open", "resolution": None, "value": None, "resolved_by": None, "resolved_at": None}
    areas = [area] if area else list(ctx.actor.areas)
    keys = conflict_keys(ctx.tree, [ctx.actor.user_id], areas) if not area else \
        _conflict_keys(ctx, m.collection if isinstance(m.collection, str) else None, rid.lower() if rid else None,
                       [ctx.actor.user_id], area)
    _write_new(ctx, "conflicts", cid, data, keys)
    return PushResult(mid=m.mid, status="rejected", error=_err(e.code, e.message), conflict_id=cid,
                      id=rid if rid and is_uuid(rid) else None)


def _mutation_json(m: MutationIn) -> dict[str, Any]:
    out = {"mid": m.mid, "collection": m.collection, "id": m.id, "op": m.op, "base": m.base,
           "fields": m.fields, "at": m.at}
    try:
        size = len(msgspec.json.encode(out))
    except (TypeError, msgspec.EncodeError):
        size = 1 << 30
    if size > 64 * 1024:  # keep the evidence bounded; the reason is what matters
        out["fields"] = {"_truncated": True}
    return out


def _apply(ctx: _Ctx, m: MutationIn) -> PushResult:
    if not is_uuid(m.mid):
        raise MutationRejected("invalid_request", "mid: must be a UUID made on the device")
    coll_name = m.collection
    if not isinstance(coll_name, str) or coll_name not in COLLECTIONS:
        raise MutationRejected("invalid_request", f"collection: there is no collection {coll_name!r}")
    if coll_name not in PUSHABLE:
        raise MutationRejected("forbidden", f"collection: {coll_name} cannot be changed by sync")
    if m.op not in ("upsert", "delete"):
        raise MutationRejected("invalid_request", "op: must be upsert or delete")
    if not is_uuid(m.id):
        raise MutationRejected("invalid_request", "id: must be a UUID string made on the device")
    if isinstance(m.base, bool) or not isinstance(m.base, int) or not 0 <= m.base <= MAX_VERSION:
        raise MutationRejected("invalid_request", "base: must be a whole number from 0 (a new record) "
                                                  f"to {MAX_VERSION}")
    try:
        at = parse_at(m.at)
    except ValueError:
        raise MutationRejected("invalid_request", "at: must be an ISO 8601 time with an offset or Z") from None
    at_iso = iso(min(at, ctx.now))
    if m.op == "upsert" and not isinstance(m.fields, dict):
        raise MutationRejected("invalid_request", "fields: must be an object")
    coll = COLLECTIONS[coll_name]
    rid = m.id.lower()
    edit = Edit(version=0, at=at_iso, user=ctx.actor.user_id, origin=ctx.actor.origin)
    if coll_name == "conflicts":
        return _resolve_conflict(ctx, m, rid, edit)
    existing = ctx.store.get(coll_name, rid)
    if existing is not None and not visible(ctx.keys, existing.keys):
        # Scope before anything else (issue 12, finding 8): a record outside the pusher's scope is
        # answered exactly as one that does not exist, so neither its version, its kind of record
        # nor its place can be learnt from the answer. A create that reuses its id is refused with
        # the same words as any id collision (ids are made on phones: that one bit cannot be hidden).
        if m.op == "upsert" and m.base == 0:
            raise MutationRejected("id_collision", f"id: another {coll_name} record already has this id")
        raise _unknown(coll_name, rid)
    if m.op == "delete":
        return _delete(ctx, m, coll, rid, existing, edit)
    if m.base == 0 and existing is None:
        return _create(ctx, m, coll, rid, edit)
    if coll.append_only:
        if m.base == 0 and existing is not None:
            fields = validate_fields(coll, m.fields, create=True)
            if existing.created_by == ctx.actor.user_id and merge.same_content(coll, existing.data, fields):
                return PushResult(mid=m.mid, status="applied", version=existing.version, id=rid)
            raise MutationRejected("id_collision", f"id: another {coll_name} record already has this id")
        raise MutationRejected("invalid_request", f"{coll_name} is append-only: records are created, never changed")
    if existing is None:
        raise _unknown(coll_name, rid)
    if m.base == 0 and existing.created_by != ctx.actor.user_id:
        raise MutationRejected("id_collision", f"id: another {coll_name} record already has this id")
    return _update(ctx, m, coll, existing, edit)


def _unknown(coll: str, rid: str) -> MutationRejected:
    """The one answer for a record that does not exist and for one outside the pusher's scope."""
    return MutationRejected("forbidden", f"id: no {coll} record {rid} in your area "
                                         "(it does not exist, or it is outside your area)")


def _check_role(ctx: _Ctx, coll: str, op: str) -> None:
    allowed = PERMISSIONS.get(coll, {}).get(op, ())
    if ctx.actor.role not in allowed:
        what = {"create": "create", "update": "change", "delete": "delete"}[op]
        raise MutationRejected("forbidden", f"{ctx.actor.role} may not {what} {coll}")


def _check_scope(ctx: _Ctx, coll: str, keys: Iterable[str], rid: str) -> None:
    if coll in HOUSEHOLD_LINKED:
        ok = may_write_data(ctx.keys, keys)
    else:
        ok = ctx.actor.role == "admin"
    if not ok:
        raise MutationRejected("forbidden", f"{coll} {rid} is outside your area")


def _check_field_writers(ctx: _Ctx, coll: Collection, fields: dict[str, Any], existing: dict[str, Any] | None) -> None:
    for name, value in fields.items():
        f = coll.by_name[name]
        if existing is not None and f.create_only and value != existing.get(name):
            raise MutationRejected("invalid_request", f"fields.{name}: cannot be changed after creation")
        if f.writers is not None and ctx.actor.role not in f.writers:
            if existing is not None and value == existing.get(name):
                continue
            if existing is None and value in (None, False, ""):
                continue
            raise MutationRejected("forbidden", f"fields.{name}: only {' or '.join(f.writers)} may set it")


# -- references and keys ------------------------------------------------------------------------

def _live(ctx: _Ctx, coll: str, rid: Any, what: str) -> StoredRecord:
    """A referenced record that exists, is not deleted and is in the pusher's scope.

    A reference to a record outside scope is answered exactly as one to a record that does not
    exist (finding 8): the answer must not tell whether an id is used somewhere else.
    """
    rec = ctx.store.get(coll, rid) if isinstance(rid, str) else None
    if rec is None or rec.deleted or not visible(ctx.keys, rec.keys):
        raise MutationRejected("forbidden", f"{what}: no {coll} record {rid} in your area "
                                            "(it does not exist, or it is outside your area)")
    return rec


def _has_area_authority(ctx: _Ctx, area_id: str | None, chain_only: bool = False) -> bool:
    """Whether the pusher holds the place itself (an ``a:`` key on its path), not a delegation.

    ``chain_only``: authority at the level that handles sensitive (信访) matters, town and above.
    """
    if not area_id or area_id not in ctx.tree:
        return False
    return any(f"a:{x}" in ctx.keys and (not chain_only or ctx.tree.level.get(x) in SENSITIVE_CHAIN_LEVELS)
               for x in ctx.tree.path(area_id))


# The fields that decide where a record lives, and so who sees it (issue 12, finding 1).
SCOPE_FIELDS: dict[str, tuple[str, ...]] = {
    "households": ("grid_id",),
    "residents": ("household_id",),
    "visits": ("household_id",),
    "matters": ("household_id", "category", "line", "assignee_id"),
    "matter_events": ("matter_id",),
    "attachments": ("record_collection", "record_id"),
}


def _check_move(ctx: _Ctx, coll: str, existing: StoredRecord, new: dict[str, Any], moved: list[str]) -> None:
    """Re-homing a record (or changing who may see it) needs the place itself, old and new (finding 1):
    a record held only through a delegation (an agent's, a dispatched worker's) is never moved."""
    old_area, new_area = _area_of(ctx, coll, existing.data), _area_of(ctx, coll, new)
    if not (_has_area_authority(ctx, old_area) and _has_area_authority(ctx, new_area)):
        raise MutationRejected("forbidden", f"fields.{moved[0]}: only someone responsible for both the old and "
                                            f"the new place may move this {coll} record")


def _check_parent(ctx: _Ctx, coll: str, fields: dict[str, Any]) -> None:
    """The parent first (finding 2): a new record hangs off a household its author may write, whatever
    keys the record itself would get (a sensitive matter's are narrowed to its handling chain)."""
    if coll in ("residents", "visits", "matters") and _agents_village_household(ctx, coll, fields) is None:
        household = _live(ctx, "households", fields["household_id"], "fields.household_id")
        _check_scope(ctx, "households", household.keys, household.id)
        if coll == "matters" and not _has_area_authority(ctx, household.data.get("grid_id")):
            # A new matter needs the place itself: a household held through a delegation (an agent's,
            # a dispatched worker's) takes no new matters, ordinary or 信访 alike.
            raise MutationRejected("forbidden", f"households {household.id} is outside your area")
    elif coll == "attachments" and fields["record_collection"] in HOUSEHOLD_LINKED:
        target = _live(ctx, fields["record_collection"], fields["record_id"], "fields.record_id")
        _check_scope(ctx, target.collection, target.keys, target.id)


def _check_resolution(ctx: _Ctx, coll: Collection, target: StoredRecord, chosen: dict[str, Any]) -> None:
    """A resolution is a write (finding 3): exactly the checks of an update, made for the resolver now:
    role, scope of the record as it is, who may write each field, references and both places."""
    _check_update(ctx, coll, target, chosen)


def _check_update(ctx: _Ctx, coll: Collection, existing: StoredRecord, fields: dict[str, Any]) -> None:
    """Every check an update of an existing record must pass: who may write it, its fields and its place.

    One function for every write path that changes an existing record: a push's update and a
    conflict's resolution alike (finding 3: a resolution is a write).
    """
    _check_role(ctx, coll.name, "update")
    _check_scope(ctx, coll.name, existing.keys, existing.id)
    _check_field_writers(ctx, coll, fields, existing.data)
    new = dict(existing.data)
    new.update({k: v for k, v in fields.items() if not coll.by_name[k].set_valued})
    moved = [f for f in SCOPE_FIELDS.get(coll.name, ()) if f in fields and fields[f] != existing.data.get(f)]
    if coll.name == "households" and "grid_id" in moved and fields["grid_id"] not in ctx.tree:
        raise MutationRejected("invalid_request", "fields.grid_id: no such area")
    if coll.name == "residents" and "household_id" in moved:
        _live(ctx, "households", fields["household_id"], "fields.household_id")
    if moved:
        _check_move(ctx, coll.name, existing, new, moved)
    if coll.name == "matters":
        if "assignee_id" in moved:
            if not ctx.actor.is_staff:
                raise MutationRejected("forbidden", "fields.assignee_id: only staff dispatch (派单) a matter")
            if fields["assignee_id"]:
                _check_assignee(ctx, fields["assignee_id"], existing.data["household_id"], creating=False)
        if fields.get("resident_id"):
            _check_resident(ctx, fields["resident_id"], existing.data["household_id"])
        was = bool(existing.data.get("sensitive"))
        if was and not matter_sensitive(new, _category(ctx, new.get("category"))) and not (
                ctx.actor.is_staff and _has_area_authority(ctx, _area_of(ctx, "matters", existing.data), True)):
            # Lowering a 信访 matter to an ordinary one would hand it to the grid's phones.
            raise MutationRejected("forbidden", "fields.category: only town staff may make a sensitive (信访) "
                                                "matter an ordinary one")


def _household_grid(ctx: _Ctx, household_id: str) -> str | None:
    h = ctx.store.get("households", household_id)
    return h.data.get("grid_id") if h else None


def _area_of_existing(ctx: _Ctx, coll: str, rid: str) -> str | None:
    rec = ctx.store.get(coll, rid)
    return _area_of(ctx, coll, rec.data) if rec else None


def _area_of(ctx: _Ctx, coll: str, data: dict[str, Any]) -> str | None:
    """The grid a household-linked record lives in."""
    if coll == "households":
        return data.get("grid_id")
    if coll in ("residents", "visits", "matters"):
        return _household_grid(ctx, data.get("household_id", ""))
    if coll == "matter_events":
        mt = ctx.store.get("matters", data.get("matter_id", ""))
        return _household_grid(ctx, mt.data.get("household_id", "")) if mt else None
    if coll == "attachments":
        return _area_of_existing(ctx, data.get("record_collection", ""), data.get("record_id", "")) \
            if data.get("record_collection") in HOUSEHOLD_LINKED else None
    return None


def _keys_for(ctx: _Ctx, coll: str, rid: str, data: dict[str, Any]) -> set[str]:
    """The scope keys of a record, from its data and the records it hangs off."""
    s, t = ctx.store, ctx.tree
    if coll == "areas":
        return {f"n:{rid}", f"a:{rid}"} | area_keys(t, data.get("parent_id"))
    if coll == "users":
        return user_record_keys(t, rid, data.get("areas") or [])
    if coll == "categories":
        return {"g:all"}
    if coll == "households":
        return area_keys(t, data.get("grid_id")) | delegation_keys(
            s.active_assignees(rid, workflow.DELEGATION_ENDED))
    if coll == "residents":
        h = s.get("households", data.get("household_id", ""))
        return set(h.keys) if h else set()
    if coll == "visits":
        h = s.get("households", data.get("household_id", ""))
        return {k for k in h.keys if k.startswith("a:")} if h else set()
    if coll == "matters":
        h = s.get("households", data.get("household_id", ""))
        keys = {k for k in h.keys if k.startswith("a:")} if h else set()
        if data.get("sensitive"):
            # 信访: only the handling chain sees it: the staff of the town and above, whoever raised
            # it and its delegated agent; x:sensitive marks it (and what hangs off it) for the read audit.
            # (the one who raised it sees it while it is handled, like its agent)
            keys = {k for k in keys if t.level.get(k[2:]) in SENSITIVE_CHAIN_LEVELS} | {SENSITIVE_KEY}
            if workflow.delegation_active(data.get("status") or workflow.INITIAL):
                own = s.get("matters", rid)
                keys |= delegation_keys([own.created_by if own else ctx.actor.user_id])
        if workflow.delegation_active(data.get("status") or workflow.INITIAL):
            keys |= delegation_keys([data.get("assignee_id")])
        return keys
    if coll == "matter_events":
        mt = s.get("matters", data.get("matter_id", ""))
        return set(mt.keys) if mt else set()
    if coll == "attachments":
        target = s.get(data.get("record_collection", ""), data.get("record_id", "")) \
            if data.get("record_collection") in HOUSEHOLD_LINKED else None
        return set(target.keys) if target else set()
    if coll == "conflicts":
        return conflict_keys(t, data.get("involved") or [], [data.get("area_id")])
    raise AssertionError(coll)


DEPENDENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "households": (("residents", "household_id"), ("visits", "household_id"), ("matters", "household_id"),
                   ("attachments", "record_id")),
    "residents": (("attachments", "record_id"),),
    "visits": (("attachments", "record_id"),),
    "matters": (("matter_events", "matter_id"), ("attachments", "record_id")),
    "matter_events": (("attachments", "record_id"),),
}


def _cascade(ctx: _Ctx, coll: str, rid: str, old_keys: Iterable[str], new_keys: Iterable[str], depth: int = 0) -> None:
    """A record's keys changed from ``old_keys`` to ``new_keys``: recompute the keys of the records
    that hang off it, and of the conflicts about it when it became sensitive or stopped being.

    When only a household's delegation keys changed, visits and matters cannot change (they take
    the household's area keys only), so they are not even read.
    """
    old, new = set(old_keys), set(new_keys)
    only_delegation = all(k.startswith("d:") for k in old ^ new)
    for dep, column in DEPENDENTS.get(coll, ()):
        if only_delegation and coll == "households" and dep in ("visits", "matters"):
            continue
        for did in ctx.store.ids_where(dep, column, rid):
            _refresh_keys(ctx, dep, did, depth + 1)
    if (SENSITIVE_KEY in old) != (SENSITIVE_KEY in new):
        _refresh_conflicts(ctx, coll, rid)


def _refresh_conflicts(ctx: _Ctx, coll: str, rid: str) -> None:
    """A record became sensitive (信访) or stopped being: the conflicts about it follow, so that a
    conflict made while it was ordinary does not keep showing it to the village's staff."""
    rec = ctx.store.get(coll, rid)
    if rec is None:
        return
    for cid in ctx.store.conflict_ids_about([rid]):
        c = ctx.store.get("conflicts", cid)
        area = c.data.get("area_id") if c else None
        if c is None or not area:
            continue      # a rejection without a place is seen by its author (and their staff) only
        new = _conflict_keys(ctx, coll, rid, c.data.get("involved") or [], area)
        if new != set(c.keys):
            ctx.store.set_keys("conflicts", cid, c.keys, new, ctx.store.next_seq())


def _refresh_keys(ctx: _Ctx, coll: str, rid: str, depth: int = 0) -> None:
    rec = ctx.store.get(coll, rid)
    if rec is None or depth > 6:
        return
    if coll == "attachments" and rec.data.get("record_collection") not in HOUSEHOLD_LINKED:
        return
    new = _keys_for(ctx, coll, rid, rec.data)
    if new == set(rec.keys):
        return
    ctx.store.set_keys(coll, rid, rec.keys, new, ctx.store.next_seq())
    _cascade(ctx, coll, rid, rec.keys, new, depth)


def _delegation_changed(ctx: _Ctx, matter: dict[str, Any]) -> None:
    """A matter's assignee or status changed: its household (and so residents) may gain or lose d: keys."""
    hid = matter.get("household_id")
    if hid:
        _refresh_keys(ctx, "households", hid)


def _category(ctx: _Ctx, code: Any) -> dict[str, Any] | None:
    """The catalogue entry of a category code (None for none or an unknown code)."""
    if not isinstance(code, str) or not code:
        return None
    for cid in ctx.store.ids_where("categories", "code", code):
        rec = ctx.store.get("categories", cid)
        if rec is not None and not rec.deleted:
            return rec.data
    return None


def _derive_matter(ctx: _Ctx, data: dict[str, Any]) -> None:
    """The computed fields of a matter that follow from its other fields (in place)."""
    data["sensitive"] = matter_sensitive(data, _category(ctx, data.get("category")))
    data.setdefault("paused_workdays", 0)
    data.setdefault("paused_since", None)
    data["effective_deadline"] = proxy.effective_deadline(data.get("deadline"), data.get("paused_workdays") or 0)


def _rederive_matters(ctx: _Ctx, code: Any) -> None:
    """A category became sensitive (or stopped being): its matters follow, and so do their keys.

    Otherwise a 信访 category flagged after the fact would leave its matters on the grid's phones.
    """
    if not isinstance(code, str) or not code:
        return
    for rec in ctx.store.get_many("matters", ctx.store.matter_ids_in_category(code)).values():
        data = dict(rec.data)
        _derive_matter(ctx, data)
        if data.get("sensitive") == rec.data.get("sensitive"):
            continue
        seq = ctx.store.next_seq()
        meta = dict(rec.meta, sensitive={"v": seq, "at": ctx.now_iso, "u": ctx.actor.user_id, "o": ctx.actor.origin})
        keys = _keys_for(ctx, "matters", rec.id, data)
        _write(ctx, StoredRecord("matters", rec.id, seq, rec.deleted, data, meta, sorted(keys), rec.created_at,
                                 ctx.now_iso, rec.created_by, ctx.actor.user_id), rec.keys, seq)
        if set(keys) != set(rec.keys):
            _cascade(ctx, "matters", rec.id, rec.keys, keys)


def _events_of(ctx: _Ctx, matter_id: str) -> list[dict[str, Any]]:
    ids = ctx.store.ids_where("matter_events", "matter_id", matter_id)
    return [r.data for r in ctx.store.get_many("matter_events", ids).values() if not r.deleted]


# -- writes --------------------------------------------------------------------------------------

def _write(ctx: _Ctx, rec: StoredRecord, old_keys: Iterable[str], seq: int, new: bool = False) -> None:
    """The one write path of a record: the row, the feed, the blob citations, the area cache.

    ``new``: the record did not exist before this mutation (it cannot cite anything yet)."""
    ctx.store.put(rec, old_keys, seq)
    coll = COLLECTIONS[rec.collection]
    if any(f.blob_ref for f in coll.fields):
        blobs.record_citations(ctx.store, ctx.actor.user_id, ctx.keys, rec.collection, rec.id, blob_refs(coll, rec.data),
                               new_record=new)
    if rec.collection == "areas":
        ctx.touched_areas = True


def _write_new(ctx: _Ctx, coll: str, rid: str, data: dict[str, Any], keys: set[str],
               meta: dict[str, Any] | None = None) -> StoredRecord:
    seq = ctx.store.next_seq()
    if meta is None:
        e = Edit(seq, ctx.now_iso, ctx.actor.user_id, ctx.actor.origin)
        meta = {k: merge.new_meta(e) for k in data}
    rec = StoredRecord(coll, rid, seq, False, data, meta, sorted(keys), ctx.now_iso, ctx.now_iso,
                       ctx.actor.user_id, ctx.actor.user_id)
    _write(ctx, rec, (), seq)
    return rec


def _conflict(ctx: _Ctx, m: MutationIn, kind: str, coll: str, rid: str, fields: dict[str, Any] | None,
              others: Iterable[str | None], area: str | None) -> str:
    cid = uuid7()
    involved = sorted({ctx.actor.user_id, *[o for o in others if o]})
    data = {"kind": kind, "collection": coll, "record_id": rid, "mutation": _mutation_json(m), "fields": fields,
            "error": None, "author_id": ctx.actor.user_id, "device_id": ctx.actor.device_id, "involved": involved,
            "area_id": area, "status": "open", "resolution": None, "value": None, "resolved_by": None,
            "resolved_at": None}
    _write_new(ctx, "conflicts", cid, data, _conflict_keys(ctx, coll, rid, involved, area))
    return cid


def _conflict_keys(ctx: _Ctx, coll: str | None, rid: str | None, involved: Iterable[str],
                   area: str | None) -> set[str]:
    """A conflict is seen by whoever it involves and the staff of its place; one about a sensitive
    (信访) record only by the staff of its handling chain, as the record itself (finding 4)."""
    keys = conflict_keys(ctx.tree, involved, [area])
    rec = ctx.store.get(coll, rid) if coll in COLLECTIONS and isinstance(rid, str) else None
    if rec is not None and SENSITIVE_KEY in rec.keys:
        keys = {k for k in keys if not k.startswith("c:") or ctx.tree.level.get(k[2:]) in SENSITIVE_CHAIN_LEVELS}
    return keys


def _create(ctx: _Ctx, m: MutationIn, coll: Collection, rid: str, edit: Edit) -> PushResult:
    _check_role(ctx, coll.name, "create")
    fields = validate_fields(coll, m.fields, create=True)
    _check_field_writers(ctx, coll, fields, None)
    computed: dict[str, Any] = {}
    if coll.name == "areas":
        if fields.get("parent_id") and fields["parent_id"] not in ctx.tree:
            raise MutationRejected("invalid_request", "fields.parent_id: no such area")
    elif coll.name == "categories":
        if ctx.store.ids_where("categories", "code", fields["code"]):
            raise MutationRejected("invalid_request", f"fields.code: a category {fields['code']!r} already exists")
    elif coll.name == "households":
        if fields["grid_id"] not in ctx.tree:
            raise MutationRejected("invalid_request", "fields.grid_id: no such area")
    elif coll.name in ("residents", "visits", "matters"):
        _check_parent(ctx, coll.name, fields)
        if coll.name == "visits":
            computed["worker_id"] = ctx.actor.user_id
        if coll.name == "matters":
            computed.update(status=workflow.INITIAL, resolved_at=None, closed_at=None)
            if not fields.get("raised_at"):
                computed["raised_at"] = edit.at
            if fields.get("resident_id"):
                _check_resident(ctx, fields["resident_id"], fields["household_id"])
            if fields.get("assignee_id"):
                _check_assignee(ctx, fields["assignee_id"], fields["household_id"], creating=True)
    elif coll.name == "matter_events":
        return _create_event(ctx, m, coll, rid, fields, edit)
    elif coll.name == "attachments":
        _check_parent(ctx, coll.name, fields)
    seq = ctx.store.next_seq()
    edit.version = seq
    data, meta = merge.create_record(coll, fields, edit)
    for k, v in computed.items():
        data[k] = v
        meta[k] = merge.new_meta(edit)
    for f in coll.fields:  # every field present in the stored record, null when not given
        data.setdefault(f.name, [] if f.set_valued else None)
    if coll.name == "matters":
        data["paused_workdays"] = 0
        _derive_matter(ctx, data)
    keys = _keys_for(ctx, coll.name, rid, data)
    _check_scope(ctx, coll.name, keys, rid)
    rec = StoredRecord(coll.name, rid, seq, False, data, meta, sorted(keys), ctx.now_iso, ctx.now_iso,
                       ctx.actor.user_id, ctx.actor.user_id)
    _write(ctx, rec, (), seq, new=True)
    if coll.name == "matters" and data.get("assignee_id"):
        _delegation_changed(ctx, data)
    return PushResult(mid=m.mid, status="applied", version=seq, id=rid)


def _agents_village_household(ctx: _Ctx, coll: str, fields: dict[str, Any]) -> StoredRecord | None:
    """不下山: a resident asks the proxy agent of their village directly, and the agent files the
    matter for them, handed to themselves. The one create on a household the agent does not yet
    hold; it must lie in the agent's own village (``_check_assignee`` checks the hand-over)."""
    if coll != "matters" or ctx.actor.role != "proxy_agent" or fields.get("assignee_id") != ctx.actor.user_id:
        return None
    h = ctx.store.get("households", fields["household_id"])
    if h is None or h.deleted:
        return None
    village = ctx.tree.village_of(h.data.get("grid_id") or "")
    if village is None or not any(village in ctx.tree.path(a) or a in ctx.tree.path(village) for a in ctx.actor.areas):
        return None
    return h


def _check_resident(ctx: _Ctx, resident_id: str, household_id: str) -> None:
    r = ctx.store.get("residents", resident_id)
    if r is None or r.deleted or r.data.get("household_id") != household_id:
        # one answer whether the resident does not exist or lives elsewhere (finding 8)
        raise MutationRejected("invalid_request", f"fields.resident_id: no resident {resident_id} in this household")


def _check_assignee(ctx: _Ctx, assignee_id: str, household_id: str, creating: bool) -> None:
    user = ctx.store.get("users", assignee_id)
    if user is None or user.deleted or user.data.get("active") is False:
        raise MutationRejected("invalid_request", "fields.assignee_id: no such active user")
    grid = _household_grid(ctx, household_id)
    if ctx.actor.is_staff:
        # Staff hand a matter (交办) only to someone who works where it lives (whose areas hold its
        # grid: its grid's workers, its village's agent, the town's staff and the county's departments)
        # or within the dispatcher's own area, or to an administrator of everything: anyone else would
        # receive the household with it, outside the dispatcher's authority.
        areas = user.data.get("areas") or []
        works_there = grid is not None and any(a in ctx.tree.path(grid) for a in areas)
        within_mine = any(_has_area_authority(ctx, a) for a in areas)
        if not (works_there or within_mine or (user.data.get("role") == "admin" and not areas)):
            raise MutationRejected("forbidden", "fields.assignee_id: hand a matter only to someone who works "
                                                "where it lives or within your area")
        return
    # A grid worker may hand a new matter to a proxy agent of the household's village (代办), nothing more.
    village = ctx.tree.village_of(grid) if grid else None
    agent_areas = user.data.get("areas") or []
    if not creating or user.data.get("role") != "proxy_agent" or village is None or not any(
            village in ctx.tree.path(a) or a in ctx.tree.path(village) for a in agent_areas):
        raise MutationRejected("forbidden", "fields.assignee_id: you may only delegate a new matter "
                                            "to a proxy agent of its village")


def _update(ctx: _Ctx, m: MutationIn, coll: Collection, existing: StoredRecord, edit: Edit) -> PushResult:
    _check_role(ctx, coll.name, "update")
    _check_scope(ctx, coll.name, existing.keys, existing.id)
    fields = validate_fields(coll, m.fields, create=False)
    _check_update(ctx, coll, existing, fields)
    base = ctx.store.known_base(m.base)   # a version lost in a restore: the phone saw the whole copy
    if base == m.base and base > existing.version:
        raise MutationRejected("invalid_base", f"base: {m.base} is newer than the record's version {existing.version}")
    area = _area_of(ctx, coll.name, existing.data)
    if existing.deleted:
        # Protocol §6: a record deleted since base is never brought back by an update.
        deleted_cid = _conflict(ctx, m, "update_deleted", coll.name, existing.id,
                        {k: {"incoming": v, "current": None, "incoming_at": edit.at, "current_at": existing.updated_at,
                             "current_by": existing.updated_by, "winner": "current"} for k, v in fields.items()},
                        [existing.updated_by], area)
        return PushResult(mid=m.mid, status="conflict", version=existing.version, conflict_id=deleted_cid,
                          id=existing.id)
    seq = ctx.store.next_seq()
    edit.version = seq
    d = merge.merge_update(coll, existing.data, existing.meta, base, fields, edit)
    version = existing.version
    cid: str | None = None
    if d.changes or d.meta_only:
        data = dict(existing.data)
        data.update(d.changes)
        if coll.name == "matters":
            _derive_matter(ctx, data)
        meta = dict(existing.meta)
        meta.update(d.meta_only)
        meta.update(d.meta)
        keys = _keys_for(ctx, coll.name, existing.id, data)
        rec = StoredRecord(coll.name, existing.id, seq, False, data, meta, sorted(keys), existing.created_at,
                           ctx.now_iso, existing.created_by, ctx.actor.user_id)
        _write(ctx, rec, existing.keys, seq)
        version = seq
        if set(keys) != set(existing.keys):
            _cascade(ctx, coll.name, existing.id, existing.keys, keys)
        if coll.name == "matters" and "assignee_id" in d.changes:
            _delegation_changed(ctx, data)
        if coll.name == "categories" and any(k in d.changes for k in ("sensitive", "code")):
            _rederive_matters(ctx, data.get("code"))
    if d.conflicts:
        cid = _conflict(ctx, m, "field", coll.name, existing.id,
                        {k: c.as_json() for k, c in d.conflicts.items()},
                        [c.current_by for c in d.conflicts.values()], area)
    return PushResult(mid=m.mid, status=d.status, version=version, conflict_id=cid, id=existing.id)


def _delete(ctx: _Ctx, m: MutationIn, coll: Collection, rid: str, existing: StoredRecord | None,
            edit: Edit) -> PushResult:
    if coll.append_only:
        raise MutationRejected("invalid_request", f"{coll.name} is append-only: records are never deleted")
    if existing is None:
        raise _unknown(coll.name, rid)
    _check_role(ctx, coll.name, "delete")
    _check_scope(ctx, coll.name, existing.keys, rid)
    base = ctx.store.known_base(m.base)   # a version lost in a restore: the phone saw the whole copy
    if base == m.base and base > existing.version:
        raise MutationRejected("invalid_base", f"base: {m.base} is newer than the record's version {existing.version}")
    if existing.deleted:
        return PushResult(mid=m.mid, status="applied", version=existing.version, id=rid)
    if merge.record_changed_by_other_since(existing.meta, base, ctx.actor.origin):
        others = {fm.get("u") for fm in existing.meta.values()
                  if merge.changed_by_other_since(fm, base, ctx.actor.origin)}
        changed = {k: {"incoming": None, "current": existing.data.get(k), "incoming_at": edit.at,
                       "current_at": fm.get("at"), "current_by": fm.get("u"), "winner": "current"}
                   for k, fm in existing.meta.items() if merge.changed_by_other_since(fm, base, ctx.actor.origin)}
        cid = _conflict(ctx, m, "delete", coll.name, rid, changed, others, _area_of(ctx, coll.name, existing.data))
        return PushResult(mid=m.mid, status="conflict", version=existing.version, conflict_id=cid, id=rid)
    seq = _tombstone(ctx, existing, edit.at)
    return PushResult(mid=m.mid, status="applied", version=seq, id=rid)


def _tombstone(ctx: _Ctx, existing: StoredRecord, at: str) -> int:
    seq = ctx.store.next_seq()
    meta = dict(existing.meta)
    meta["_deleted"] = {"v": seq, "at": at, "u": ctx.actor.user_id, "o": ctx.actor.origin}
    rec = StoredRecord(existing.collection, existing.id, seq, True, existing.data, meta, existing.keys,
                       existing.created_at, ctx.now_iso, existing.created_by, ctx.actor.user_id)
    _write(ctx, rec, existing.keys, seq)
    if existing.collection == "matters":
        _delegation_changed(ctx, existing.data)
    return seq


# -- matter events and the state machine --------------------------------------------------------

def _create_event(ctx: _Ctx, m: MutationIn, coll: Collection, rid: str, fields: dict[str, Any],
                  edit: Edit) -> PushResult:
    matter = ctx.store.get("matters", fields["matter_id"])
    if matter is None or matter.deleted or not (visible(ctx.keys, matter.keys) or _was_delegated(ctx, matter.id)):
        # Outside scope reads as unknown (finding 8); an agent whose delegation ended meanwhile still
        # reaches the matter, so that the work done offline is kept for staff to decide (below).
        raise MutationRejected("forbidden", f"fields.matter_id: no matters record {fields['matter_id']} "
                                            "in your area (it does not exist, or it is outside your area)")
    kind = fields["kind"]
    cat = _category(ctx, matter.data.get("category"))
    checked = proxy.check_event_data(fields, (cat or {}).get("materials"))
    if kind in ("delegation", "custody", "step", "feedback"):
        fields["data"] = checked
    if fields.get("for_resident_id"):
        r = ctx.store.get("residents", fields["for_resident_id"])
        if r is None or r.deleted or r.data.get("household_id") != matter.data.get("household_id"):
            raise MutationRejected("invalid_request", "fields.for_resident_id: no such resident in the matter's "
                                                      "household")
    if kind == "delegation":
        agent = ctx.store.get("users", fields["for_user_id"])
        if agent is None or agent.deleted or agent.data.get("active") is False \
                or agent.data.get("role") != "proxy_agent":
            raise MutationRejected("invalid_request", "fields.for_user_id: a delegation authorises an active proxy agent")
        if fields["data"]["until"] < proxy.local_date(edit.at).isoformat():
            raise MutationRejected("invalid_request", "fields.data.until: the delegation would already have ended")
    # 委托 first: a proxy agent acts on a proxy matter only while the resident's delegation holds.
    delegation_ended = False
    is_assignee = matter.data.get("assignee_id") == ctx.actor.user_id
    acting_agent = (ctx.actor.role == "proxy_agent" and matter.data.get("handling_mode") == "proxy"
                    and kind in proxy.ACTING_KINDS)
    if acting_agent:
        on = proxy.local_date(edit.at)
        mine = [e for e in _events_of(ctx, matter.id)
                if e.get("kind") == "delegation" and e.get("for_user_id") == ctx.actor.user_id]
        current = matter.data.get("status") or workflow.INITIAL
        if is_assignee and workflow.delegation_active(current):
            if not any(proxy.delegation_valid(e, ctx.actor.user_id, on) for e in mine):
                raise MutationRejected("no_delegation", "record the resident's authorisation (委托) for this matter "
                                       "before acting on it" if not mine else
                                       "the resident's authorisation (委托) has expired; record a new one")
        elif mine:
            # The agent was delegated but the delegation ended meanwhile (reassigned, closed) while the
            # phone was offline: the work is kept, not applied, and staff decide (conflict "delegation").
            delegation_ended = True
    if not delegation_ended:
        _check_scope(ctx, "matters", matter.keys, matter.id)
    if kind == "step" and fields.get("step") == "delivered" and not delegation_ended:
        out = proxy.originals_unaccounted(_events_of(ctx, matter.id))
        if out:
            raise MutationRejected("invalid_request", "fields.step: originals not yet returned to the resident or "
                                   "kept by the window: " + ", ".join(out) + " (record their custody first)")
    applied: bool | None = None
    conflict_needed = False
    status_result: Status = "applied"
    moves = kind == "status" or (kind == "step" and fields.get("to") is not None)
    if delegation_ended:
        applied = False if moves or kind in proxy.ACTING_KINDS else None
    elif moves:
        frm, to = fields.get("from"), fields.get("to")
        if not to:
            raise MutationRejected("invalid_request", "fields.to: a status event needs the new status")
        current = matter.data.get("status") or workflow.INITIAL
        as_proxy = acting_agent and is_assignee
        if current == to:
            # somebody already made this very move: kept as a record (merged) if the author's move was
            # valid from what they saw and theirs to make; valid from neither status: invalid_transition
            if not (frm and frm != to and workflow.is_transition(frm, to)):
                raise MutationRejected("invalid_transition", f"to: the matter is already {to}")
            if not workflow.may_transition(frm, to, ctx.actor.role, is_assignee, as_proxy):
                raise MutationRejected("forbidden", f"to: {ctx.actor.role} may not move a matter from {frm} to {to}")
            applied, status_result = False, "merged"
        elif workflow.is_transition(current, to):
            if not workflow.may_transition(current, to, ctx.actor.role, is_assignee, as_proxy):
                raise MutationRejected("forbidden", f"to: {ctx.actor.role} may not move a matter from {current} to {to}")
            applied = True
        elif frm and frm != current and workflow.is_transition(frm, to):
            if not workflow.may_transition(frm, to, ctx.actor.role, is_assignee, as_proxy):
                raise MutationRejected("forbidden", f"to: {ctx.actor.role} may not move a matter from {frm} to {to}")
            applied, conflict_needed = False, True
        else:
            raise MutationRejected("invalid_transition", f"to: a matter cannot go from {current} to {to}")
    seq = ctx.store.next_seq()
    edit.version = seq
    data, meta = merge.create_record(coll, fields, edit)
    for f in coll.fields:
        data.setdefault(f.name, [] if f.set_valued else None)
    data.update(actor_id=ctx.actor.user_id, at=edit.at, applied=applied)
    keys = set(matter.keys)
    rec = StoredRecord(coll.name, rid, seq, False, data, meta, sorted(keys), ctx.now_iso, ctx.now_iso,
                       ctx.actor.user_id, ctx.actor.user_id)
    _write(ctx, rec, (), seq, new=True)
    version = seq
    cid: str | None = None
    if applied:
        level = (fields.get("data") or {}).get("level") if kind == "step" else None
        _set_status(ctx, matter, fields["to"], edit.at, level=level)
    elif kind == "feedback" and not delegation_ended and fields["data"]["satisfaction"] == "dissatisfied" \
            and matter.data.get("status") in ("resolved", "closed"):
        # 不满意 reopens the matter for staff to hand out again (DOMAIN.md W7 对象评价).
        _set_status(ctx, matter, "reopened", edit.at)
    if conflict_needed:
        others = [(matter.meta.get("status") or {}).get("u")]
        cid = _conflict(ctx, m, "transition", "matter_events", rid,
                        {"status": {"incoming": fields["to"], "current": matter.data.get("status"),
                                    "incoming_at": edit.at, "current_at": (matter.meta.get("status") or {}).get("at"),
                                    "current_by": others[0], "winner": "current", "from": fields.get("from")}},
                        others, _area_of(ctx, "matters", matter.data))
        status_result = "conflict"
    if delegation_ended:
        am, sm = matter.meta.get("assignee_id") or {}, matter.meta.get("status") or {}
        others = [matter.data.get("assignee_id"), am.get("u"), sm.get("u")]
        cid = _conflict(ctx, m, "delegation", "matter_events", rid,
                        {"assignee_id": {"incoming": ctx.actor.user_id, "current": matter.data.get("assignee_id"),
                                         "incoming_at": edit.at, "current_at": am.get("at"),
                                         "current_by": am.get("u"), "winner": "current",
                                         "status": matter.data.get("status"), "kind": kind,
                                         "step": fields.get("step"), "to": fields.get("to"),
                                         "title": matter.data.get("title")}},
                        others, _area_of(ctx, "matters", matter.data))
        status_result = "conflict"
    return PushResult(mid=m.mid, status=status_result, version=version, conflict_id=cid, id=rid)


def _was_delegated(ctx: _Ctx, matter_id: str) -> bool:
    """Whether the pushing proxy agent holds a delegation event of this matter (current or ended)."""
    return ctx.actor.role == "proxy_agent" and any(
        e.get("kind") == "delegation" and e.get("for_user_id") == ctx.actor.user_id for e in _events_of(ctx, matter_id))


def _set_status(ctx: _Ctx, matter: StoredRecord, to: str, at: str, level: str | None = None) -> StoredRecord:
    """Move a matter (already validated) and keep delegation scope in step.

    Waiting for materials stops the deadline clock: the working days from entering
    ``waiting_materials`` to leaving it are added to ``paused_workdays`` and so to
    ``effective_deadline``. A matter taken on with no deadline gets its category's default.
    """
    seq = ctx.store.next_seq()
    data = dict(matter.data)
    meta = dict(matter.meta)
    frm = data.get("status") or workflow.INITIAL
    data["status"] = to
    meta["status"] = {"v": seq, "at": at, "u": ctx.actor.user_id, "o": ctx.actor.origin}
    if to == "resolved":
        data["resolved_at"] = at
    if to == "closed":
        data["closed_at"] = at
    stamp = {"v": seq, "at": at, "u": ctx.actor.user_id, "o": ctx.actor.origin}
    if to == "waiting_materials" and frm != "waiting_materials":
        data["paused_since"] = at
    elif frm == "waiting_materials" and to != "waiting_materials" and data.get("paused_since"):
        data["paused_workdays"] = (data.get("paused_workdays") or 0) + proxy.workdays_between(
            proxy.local_date(data["paused_since"]), proxy.local_date(at))
        data["paused_since"] = None
    if to == "in_progress" and (not data.get("deadline") or not data.get("level")):
        cat = _category(ctx, data.get("category"))
        if cat and not data.get("deadline") and isinstance(cat.get("deadline_days"), int):
            data["deadline"] = proxy.add_workdays(proxy.local_date(at), cat["deadline_days"]).isoformat()
            meta["deadline"] = stamp
        if cat and not data.get("level") and cat.get("lowest_level"):
            data["level"] = cat["lowest_level"]
            meta["level"] = stamp
    if level:
        data["level"] = level
        meta["level"] = stamp
    _derive_matter(ctx, data)
    keys = _keys_for(ctx, "matters", matter.id, data)
    rec = StoredRecord("matters", matter.id, seq, matter.deleted, data, meta, sorted(keys), matter.created_at,
                       ctx.now_iso, matter.created_by, ctx.actor.user_id)
    _write(ctx, rec, matter.keys, seq)
    if set(keys) != set(matter.keys):
        _cascade(ctx, "matters", matter.id, matter.keys, keys)
    if workflow.delegation_active(matter.data.get("status") or workflow.INITIAL) != workflow.delegation_active(to):
        _delegation_changed(ctx, data)
    return rec


# -- resolving conflicts -------------------------------------------------------------------------

def _resolve_conflict(ctx: _Ctx, m: MutationIn, rid: str, edit: Edit) -> PushResult:
    if m.op != "upsert" or m.base == 0:
        raise MutationRejected("invalid_request", "conflicts are resolved by an update (base > 0), never created "
                                                  "or deleted by a client")
    c = ctx.store.get("conflicts", rid)
    if c is None or not visible(ctx.keys, c.keys):
        raise MutationRejected("not_found", f"id: no conflict {rid} that you can see")
    if not isinstance(m.fields, dict) or set(m.fields) - {"resolution", "value"} or "resolution" not in m.fields:
        raise MutationRejected("invalid_request", 'fields: send {"resolution": "current" | "incoming" | "value", '
                                                  '"value": ...}')
    resolution = m.fields["resolution"]
    if resolution not in ("current", "incoming", "value"):
        raise MutationRejected("invalid_request", "fields.resolution: must be current, incoming or value")
    is_author = c.data.get("author_id") == ctx.actor.user_id
    staff_here = ctx.actor.is_staff and any(k.startswith("c:") and k in ctx.keys for k in c.keys)
    if not (is_author or staff_here):
        raise MutationRejected("forbidden", "only the conflict's author or staff of its area may resolve it")
    if c.data.get("status") == "resolved":
        raise MutationRejected("already_resolved", f"this conflict was already resolved by "
                                                   f"{c.data.get('resolved_by')} at {c.data.get('resolved_at')}")
    kind = c.data["kind"]
    value = m.fields.get("value")
    if kind == "rejected" and resolution != "current":
        raise MutationRejected("invalid_request", "a rejected mutation can only be dismissed (resolution current); "
                                                  "send the fix as a new edit")
    if kind == "transition" and resolution == "incoming" and not ctx.actor.is_staff:
        raise MutationRejected("forbidden", "only staff decide a contested status change")
    if kind == "delegation" and resolution == "incoming" and not ctx.actor.is_staff:
        raise MutationRejected("forbidden", "only staff decide whether work done after a delegation ended counts")
    if kind in ("transition", "delete", "delegation") and resolution == "value":
        raise MutationRejected("invalid_request", f"a {kind} conflict is resolved with current or incoming")
    resolver = Edit(0, ctx.now_iso, ctx.actor.user_id, ctx.actor.origin)
    target_coll = c.data.get("collection")
    if resolution != "current" or (kind in ("update_deleted", "field") and _may_still_write(ctx, c)):
        _apply_resolution(ctx, c, kind, resolution, value, resolver, target_coll)
    seq = ctx.store.next_seq()
    data = dict(c.data)
    data.update(status="resolved", resolution=resolution, value=value if resolution == "value" else None,
                resolved_by=ctx.actor.user_id, resolved_at=ctx.now_iso)
    meta = dict(c.meta)
    for k in ("status", "resolution", "value", "resolved_by", "resolved_at"):
        meta[k] = {"v": seq, "at": ctx.now_iso, "u": ctx.actor.user_id, "o": ctx.actor.origin}
    rec = StoredRecord("conflicts", c.id, seq, False, data, meta, c.keys, c.created_at, ctx.now_iso,
                       c.created_by, ctx.actor.user_id)
    _write(ctx, rec, c.keys, seq)
    return PushResult(mid=m.mid, status="applied", version=seq, id=c.id)


def _may_still_write(ctx: _Ctx, c: StoredRecord) -> bool:
    """Whether the resolver may still write the conflict's record. An author who has lost it since
    (household moved away, delegation ended) can still dismiss the conflict ("current"), which then
    writes nothing; any other choice goes through the checks of an update and is refused."""
    target_coll, rid = c.data.get("collection"), c.data.get("record_id")
    if target_coll not in COLLECTIONS or not isinstance(rid, str):
        return False
    target = ctx.store.get(target_coll, rid)
    if target is None:
        return False
    if target_coll in HOUSEHOLD_LINKED:
        return may_write_data(ctx.keys, target.keys)
    return ctx.actor.role == "admin"


def _apply_resolution(ctx: _Ctx, c: StoredRecord, kind: str, resolution: str, value: Any, resolver: Edit,
                      target_coll: str | None) -> None:
    rid = c.data.get("record_id")
    if target_coll not in COLLECTIONS or not rid:
        return
    if kind == "delegation":
        event = ctx.store.get("matter_events", rid)
        if event is None:
            return
        matter = ctx.store.get("matters", event.data["matter_id"])
        if matter is not None:
            _check_scope(ctx, "matters", matter.keys, matter.id)   # staff of the matter's place only
        to = event.data.get("to")
        if matter is not None and to:
            current = matter.data.get("status") or workflow.INITIAL
            if not workflow.is_transition(current, to):
                raise MutationRejected("invalid_transition", f"the matter is now {current}; it cannot go to {to}. "
                                       "Resolve with current and make the move from its present status.")
            _set_status(ctx, matter, to, ctx.now_iso)
        if event.data.get("applied") is False:
            _mark_applied(ctx, event)
        return
    if kind == "transition":
        event = ctx.store.get("matter_events", rid)
        if event is None:
            return
        matter = ctx.store.get("matters", event.data["matter_id"])
        if matter is None:
            return
        _check_scope(ctx, "matters", matter.keys, matter.id)
        current, to = matter.data.get("status") or workflow.INITIAL, event.data["to"]
        was = ((c.data.get("fields") or {}).get("status") or {}).get("current")
        # Staff decide a contested move: allowed when it is a move of the table from where the matter
        # is now, or when the matter has not moved since the conflict and is not finished.
        if not workflow.is_transition(current, to) and not (current == was and current not in workflow.TERMINAL):
            raise MutationRejected("invalid_transition", f"the matter is now {current}; it cannot go to {to}. "
                                   "Resolve with current and make the move from its present status.")
        _set_status(ctx, matter, to, ctx.now_iso)
        _mark_applied(ctx, event)
        return
    coll = COLLECTIONS[target_coll]
    target = ctx.store.get(target_coll, rid)
    if target is None:
        return
    if kind == "delete":  # incoming: the stale delete goes through after all
        # a write like any delete: the resolver must be allowed to delete it, in its place, today
        _check_role(ctx, target_coll, "delete")
        _check_scope(ctx, target_coll, target.keys, rid)
        if not target.deleted:
            _tombstone(ctx, target, ctx.now_iso)
        return
    conflict_fields: dict[str, Any] = c.data.get("fields") or {}
    if resolution == "value":
        if len(conflict_fields) == 1 and not (isinstance(value, dict) and set(value) == set(conflict_fields)):
            value = {next(iter(conflict_fields)): value}
        if not isinstance(value, dict) or not set(value) <= set(conflict_fields):
            raise MutationRejected("invalid_request", "fields.value: give a value for the conflicting field(s): "
                                                      + ", ".join(conflict_fields))
        chosen = validate_fields(coll, value, create=False)
    elif resolution == "incoming":
        chosen = {k: v["incoming"] for k, v in conflict_fields.items()}
    elif kind == "field":  # current: the value the server held when the edits collided
        chosen = {k: v["current"] for k, v in conflict_fields.items()}
    else:  # current, for update_deleted: the record stays deleted
        return
    chosen = {k: v for k, v in chosen.items()
              if k in coll.by_name and not coll.by_name[k].set_valued and not coll.by_name[k].computed}
    if resolution != "value":
        # the stored sides were valid when they were pushed; the catalogue or the tree may have moved since
        chosen = validate_fields(coll, chosen, create=False)
    _check_resolution(ctx, coll, target, chosen)
    seq = ctx.store.next_seq()
    data = dict(target.data)
    meta = dict(target.meta)
    for k, v in chosen.items():
        data[k] = v
        meta[k] = {"v": seq, "at": ctx.now_iso, "u": ctx.actor.user_id, "o": ctx.actor.origin}
    deleted = target.deleted and kind != "update_deleted"
    if target_coll == "matters":
        _derive_matter(ctx, data)
    keys = _keys_for(ctx, target_coll, rid, data)
    # one write path (blob references, area cache) for pushes and resolutions alike
    _write(ctx, StoredRecord(target_coll, rid, seq, deleted, data, meta, sorted(keys), target.created_at,
                             ctx.now_iso, target.created_by, ctx.actor.user_id), target.keys, seq)
    if set(keys) != set(target.keys):
        _cascade(ctx, target_coll, rid, target.keys, keys)
    if target_coll == "matters":
        _delegation_changed(ctx, data)
    if target_coll == "categories" and any(k in chosen for k in ("sensitive", "code")):
        _rederive_matters(ctx, data.get("code"))


def _mark_applied(ctx: _Ctx, event: StoredRecord) -> None:
    """A kept-not-applied event that staff decided counts after all."""
    seq = ctx.store.next_seq()
    data = dict(event.data, applied=True)
    meta = dict(event.meta, applied={"v": seq, "at": ctx.now_iso, "u": ctx.actor.user_id, "o": ctx.actor.origin})
    _write(ctx, StoredRecord("matter_events", event.id, seq, False, data, meta, event.keys, event.created_at,
                             ctx.now_iso, event.created_by, ctx.actor.user_id), event.keys, seq)


# ----------------------------------------------------------------------------------------------
# pull

DEFAULT_LIMIT = 500
_LEAN_DROP = ("id", "version", "deleted")
MAX_LIMIT = 1000


def pull(store: SQLiteStore, actor: Actor, cursor_text: str | None, limit: int = DEFAULT_LIMIT,
         sensitive_reads: list[tuple[str, str, str]] | None = None, lean: bool = False) -> PullResponse:
    """One page of the change feed for the actor's scope (protocol §5).

    ``sensitive_reads``, when given, receives ``(collection, id, matter_id)`` for every record of a
    sensitive matter the page delivers, for the caller to audit (``proxy.record_sensitive_reads``).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SyncError("invalid_request", f"limit must be between 1 and {MAX_LIMIT}", {"parameter": "limit"})
    with store.read():
        tree = area_tree(store)
        keys = user_keys(actor, tree)
        secret = store.get_meta("secret") or ""
        epoch = store.get_meta("epoch") or ""
        horizon = int(store.get_meta("horizon") or 0)
        head = store.current_seq()
        shash = scope_hash(actor)
        if cursor_text:
            c = cursors.decode(cursor_text, secret)
            if c.epoch != epoch:
                raise SyncError("cursor_expired", "The server's data was restored or replaced since this cursor "
                                "was issued: push your outbox, clear the local copy and pull from the start.",
                                {"reason": "epoch"})
            if c.scope != shash:
                raise SyncError("cursor_expired", "Your role or areas changed since this cursor was issued: "
                                "push your outbox, clear the local copy and pull from the start.", {"reason": "scope"})
            if c.seq < horizon or c.seq > head:
                raise SyncError("cursor_expired", "This cursor is older than the server keeps deletions for: "
                                "push your outbox, clear the local copy and pull from the start.", {"reason": "age"})
            after, snap = c.seq, c.snap
        else:
            after, snap = 0, head
        entries = store.feed_page(keys, after, limit)
        taken: list[tuple[int, str, str]] = []
        seen: set[tuple[str, str]] = set()
        last = after
        for seq, coll, rid in entries:
            if (coll, rid) in seen:
                last = seq
                continue
            if len(taken) == limit:
                break
            seen.add((coll, rid))
            taken.append((seq, coll, rid))
            last = seq
        more = any(seq > last for seq, _, _ in entries)
        if not more:
            last = max(last, head)
        by_coll: dict[str, list[str]] = {}
        for _, coll, rid in taken:
            by_coll.setdefault(coll, []).append(rid)
        records = {coll: store.get_many(coll, ids) for coll, ids in by_coll.items()}
        changes: list[Change] = []
        for seq, coll, rid in taken:
            rec = records[coll].get(rid)
            in_snapshot = snap and seq <= snap
            if rec is None or not visible(keys, rec.keys):
                if not in_snapshot:
                    changes.append(Change(collection=coll, id=rid, removed=True))
            elif rec.deleted:
                if not in_snapshot:
                    changes.append(Change(collection=coll, id=rid, version=rec.version, deleted=True,
                                          data=None if lean else {"id": rid, "version": rec.version, "deleted": True}))
            else:
                data = mask_for(actor.role, coll, rec.full())
                if lean:  # extension: the change itself carries id, version and deleted (docs/protocol.md §6)
                    for k in _LEAN_DROP:
                        data.pop(k, None)
                changes.append(Change(collection=coll, id=rid, version=rec.version, deleted=False, data=data))
                if sensitive_reads is not None and SENSITIVE_KEY in rec.keys:
                    sensitive_reads.append((coll, rid, _matter_of(store, coll, rec.data) or rid))
        new_cursor = cursors.encode(cursors.Cursor(epoch, last, snap if more else 0, shash), secret)
    return PullResponse(changes=changes, cursor=new_cursor, more=more, server_time=iso(now_utc()))


def _matter_of(store: SQLiteStore, coll: str, data: dict[str, Any]) -> str | None:
    if coll == "matter_events":
        return data.get("matter_id")
    if coll == "attachments":
        if data.get("record_collection") == "matters":
            return data.get("record_id")
        if data.get("record_collection") == "matter_events":
            ev = store.get("matter_events", data.get("record_id") or "")
            return ev.data.get("matter_id") if ev else None
    return None


def readable(store: SQLiteStore, actor: Actor, coll: str, rid: str) -> StoredRecord | None:
    """A record if the actor may see it (for blob access and staff pages)."""
    rec = store.get(coll, rid)
    if rec is None:
        return None
    return rec if visible(user_keys(actor, area_tree(store)), rec.keys) else None
