"""Resolving a conflict (protocol §6): an update of the ``conflicts`` record, applied to its target.

The choice is written as a new version of the target, with every check of an update made for the
resolver now (``permissions._check_resolution``); the first resolution wins.
"""

from __future__ import annotations

from typing import Any

from . import workflow
from .context import _Ctx
from .errors import MutationRejected
from .keys import _cascade, _delegation_changed, _keys_for
from .matters import _derive_matter, _mark_applied, _rederive_matters, _set_status
from .merge import Edit
from .permissions import _check_resolution, _check_role, _check_scope, _may_still_write
from .protocol import MutationIn, PushResult
from .schema import COLLECTIONS
from .scope import visible
from .store import StoredRecord
from .validate import validate_fields
from .writes import _tombstone, _write


def _resolve_conflict(ctx: _Ctx, m: MutationIn, rid: str, edit: Edit) -> PushResult:
    if m.op != "upsert" or m.base == 0:
        raise MutationRejected("invalid_request", "conflicts are resolved by an update (base > 0), never created "
                                                  "or deleted by a client")
    c = ctx.get("conflicts", rid)
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


def _apply_resolution(ctx: _Ctx, c: StoredRecord, kind: str, resolution: str, value: Any, resolver: Edit,
                      target_coll: str | None) -> None:
    rid = c.data.get("record_id")
    if target_coll not in COLLECTIONS or not rid:
        return
    if kind == "delegation":
        event = ctx.get("matter_events", rid)
        if event is None:
            return
        matter = ctx.get("matters", event.data["matter_id"])
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
        event = ctx.get("matter_events", rid)
        if event is None:
            return
        matter = ctx.get("matters", event.data["matter_id"])
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
    target = ctx.get(target_coll, rid)
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
