"""Push (protocol §4): one transaction per request, exactly once by ``mid``, one result per mutation.

``push(store, actor, body)`` decodes the request and runs it through the store's group commit;
``_push`` is the transaction: the batch's reads prefetched, each mutation in a savepoint of its
own (a rejection undoes that mutation alone and is recorded), its result logged under its mid.
``_apply`` checks a mutation and sends it to ``_create``, ``_update``, ``_delete``, a matter event
(``matters._create_event``) or a conflict's resolution (``resolve._resolve_conflict``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable

import msgspec

from . import merge, workflow
from .conflicts import _DUP_NS, _conflict, _reject
from .context import MAX_VERSION, _Ctx, area_tree, now_utc
from .errors import MutationRejected, SyncError
from .keys import _area_of, _cascade, _delegation_changed, _keys_for
from .matters import _create_event, _derive_matter, _rederive_matters
from .merge import Edit
from .permissions import (_check_assignee, _check_field_writers, _check_parent, _check_resident, _check_role,
                          _check_scope, _check_update, _unknown)
from .protocol import MAX_MUTATIONS, PROTOCOL_VERSION, MutationIn, PushRequest, PushResponse, PushResult, push_decoder
from .resolve import _resolve_conflict
from .schema import COLLECTIONS, PUSHABLE, Collection, is_uuid, parse_at
from .scope import Actor, user_keys, visible
from .storage import Store
from .store import MATTER_NUMBER_COUNTER, StoredRecord, format_matter_number, iso, matter_number_year
from .validate import validate_fields
from .writes import _tombstone, _write


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


def push(store: Store, actor: Actor, body: bytes | PushRequest, now: datetime | None = None) -> PushResponse:
    """Apply a push request as one transaction; one result per mutation, in order."""
    req = body if isinstance(body, PushRequest) else decode_push(body)
    # Pushes that arrive while another is being written join the next transaction together (group
    # commit): one fsync for the lot, each push still all or nothing on its own (store.grouped).
    return store.grouped(lambda: _push(store, actor, req, now or now_utc()))


def _push(store: Store, actor: Actor, req: PushRequest, received: datetime) -> PushResponse:
    results: list[PushResult] = []
    with store.transaction():
        tree = area_tree(store)
        ctx = _Ctx(store, actor, tree, user_keys(actor, tree), received, iso(received))
        logged_before = _prefetch(store, actor, req.mutations)
        seen: set[str] = set()
        for index, m in enumerate(req.mutations):
            ctx.forget()   # what the previous mutation read, or wrote before it was undone
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
                ctx.forget()   # the savepoint undid this mutation's writes: read the records again
                result = _reject(ctx, m, e)
            if ctx.touched_areas:
                ctx.rescope(area_tree(store))
                ctx.touched_areas = False
            store.log_result(actor.user_id, m.mid, actor.device_id, msgspec.to_builtins(result), ctx.now_iso)
            results.append(result)
        # outbox_depth is a hint for the sync-health view: a value no outbox can have is ignored,
        # never a reason to fail the push (a 30-digit number does not fit an SQLite integer).
        depth = req.outbox_depth if req.outbox_depth is not None and 0 <= req.outbox_depth <= 10 ** 9 else None
        store.touch_device(actor.device_id, "last_push_at", ctx.now_iso, outbox_depth=depth)
    return PushResponse(results=results, server_time=iso(now_utc()))


def _prefetch(store: Store, actor: Actor, mutations: list[MutationIn]) -> dict[str, dict[str, Any]]:
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
    existing = ctx.get(coll_name, rid)
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


def _create(ctx: _Ctx, m: MutationIn, coll: Collection, rid: str, edit: Edit) -> PushResult:
    _check_role(ctx, coll.name, "create")
    fields = validate_fields(coll, m.fields, create=True)
    _check_field_writers(ctx, coll, fields, None)
    if coll.name == "matter_events":
        return _create_event(ctx, m, coll, rid, fields, edit)
    rule = CREATE_RULES.get(coll.name)
    computed = rule(ctx, fields, edit) if rule is not None else {}
    seq = ctx.store.next_seq()
    edit.version = seq
    data, meta = merge.create_record(coll, fields, edit)
    for k, v in computed.items():
        data[k] = v
        meta[k] = merge.new_meta(edit)
    for name, set_valued in _EVERY_FIELD[coll.name]:  # every field present in the stored record, null when not given
        if name not in data:
            data[name] = [] if set_valued else None
    if coll.name == "matters":
        data["paused_workdays"] = 0
        _derive_matter(ctx, data)
    keys = _keys_for(ctx, coll.name, rid, data)
    _check_scope(ctx, coll.name, keys, rid)
    if coll.name == "matters":   # the work-order number: the server's, once, after every check passed
        year = matter_number_year(ctx.now_iso)
        data["number"] = format_matter_number(year, ctx.store.next_counter(MATTER_NUMBER_COUNTER + year))
        meta["number"] = merge.new_meta(edit)
    rec = StoredRecord(coll.name, rid, seq, False, data, meta, sorted(keys), ctx.now_iso, ctx.now_iso,
                       ctx.actor.user_id, ctx.actor.user_id)
    _write(ctx, rec, (), seq, new=True)
    if coll.name == "matters" and data.get("assignee_id"):
        _delegation_changed(ctx, data)
    return PushResult(mid=m.mid, status="applied", version=seq, id=rid)


# The fields of each collection's records, and whether each is set-valued (an empty list when not given).
_EVERY_FIELD: dict[str, tuple[tuple[str, bool], ...]] = {
    c.name: tuple((f.name, f.set_valued) for f in c.fields) for c in COLLECTIONS.values()}


# -- what a new record of each collection must satisfy, and the fields the server computes for it ------
# (after the role and the fields' writers; matter events are created by matters._create_event)

def _new_area(ctx: _Ctx, fields: dict[str, Any], edit: Edit) -> dict[str, Any]:
    if fields.get("parent_id") and fields["parent_id"] not in ctx.tree:
        raise MutationRejected("invalid_request", "fields.parent_id: no such area")
    return {}


def _new_category(ctx: _Ctx, fields: dict[str, Any], edit: Edit) -> dict[str, Any]:
    if ctx.store.ids_where("categories", "code", fields["code"]):
        raise MutationRejected("invalid_request", f"fields.code: a category {fields['code']!r} already exists")
    return {}


def _new_household(ctx: _Ctx, fields: dict[str, Any], edit: Edit) -> dict[str, Any]:
    if fields["grid_id"] not in ctx.tree:
        raise MutationRejected("invalid_request", "fields.grid_id: no such area")
    return {}


def _new_resident(ctx: _Ctx, fields: dict[str, Any], edit: Edit) -> dict[str, Any]:
    _check_parent(ctx, "residents", fields)
    return {}


def _new_visit(ctx: _Ctx, fields: dict[str, Any], edit: Edit) -> dict[str, Any]:
    _check_parent(ctx, "visits", fields)
    return {"worker_id": ctx.actor.user_id}


def _new_matter(ctx: _Ctx, fields: dict[str, Any], edit: Edit) -> dict[str, Any]:
    _check_parent(ctx, "matters", fields)
    computed: dict[str, Any] = {"status": workflow.INITIAL, "resolved_at": None, "closed_at": None}
    if not fields.get("raised_at"):
        computed["raised_at"] = edit.at
    if fields.get("resident_id"):
        _check_resident(ctx, fields["resident_id"], fields["household_id"])
    if fields.get("assignee_id"):
        _check_assignee(ctx, fields["assignee_id"], fields["household_id"], creating=True)
    return computed


def _new_attachment(ctx: _Ctx, fields: dict[str, Any], edit: Edit) -> dict[str, Any]:
    _check_parent(ctx, "attachments", fields)
    return {}


# The checks run by name at call time, so that a check replaced on sync.engine (the property test's
# reverted fixes) is the one these rules call.
CREATE_RULES: dict[str, Callable[[_Ctx, dict[str, Any], Edit], dict[str, Any]]] = {
    "areas": _new_area,
    "categories": _new_category,
    "households": _new_household,
    "residents": _new_resident,
    "visits": _new_visit,
    "matters": _new_matter,
    "attachments": _new_attachment,
}


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
