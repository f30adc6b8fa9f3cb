"""Matters: their derived fields, status moves (the table is ``sync.workflow``) and matter events.

A status change is the creation of a matter event (protocol §6, "Workflow status"); proxy agents
act on a proxy matter only under the resident's delegation (``sync.proxy``).
"""

from __future__ import annotations

from typing import Any

from . import proxy, workflow
from .conflicts import _conflict
from .context import Status, _Ctx, _category, _events_of
from .errors import MutationRejected
from .keys import _area_of, _cascade, _delegation_changed, _keys_for
from .merge import Edit
from .permissions import _check_scope, _was_delegated
from .protocol import MutationIn, PushResult
from .schema import Collection
from .scope import matter_sensitive, visible
from .store import StoredRecord
from .writes import _write
from . import merge


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


def _create_event(ctx: _Ctx, m: MutationIn, coll: Collection, rid: str, fields: dict[str, Any],
                  edit: Edit) -> PushResult:
    matter = ctx.get("matters", fields["matter_id"])
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
        r = ctx.get("residents", fields["for_resident_id"])
        if r is None or r.deleted or r.data.get("household_id") != matter.data.get("household_id"):
            raise MutationRejected("invalid_request", "fields.for_resident_id: no such resident in the matter's "
                                                      "household")
    if kind == "delegation":
        agent = ctx.get("users", fields["for_user_id"])
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


def _set_status(ctx: _Ctx, matter: StoredRecord, to: str, at: str, level: str | None = None) -> StoredRecord:
    """Move a matter (already validated) and keep delegation scope in step.

    Waiting for materials stops the deadline clock: the working days from entering
    ``waiting_materials`` to leaving it are added to ``paused_workdays`` and so to
    ``effective_deadline``. A matter taken on with no deadline gets its category's default. A
    reopened matter gets a new deadline, its category's ``deadline_days`` working days from the
    reopening (without one it keeps the deadline staff set), and loses ``resolved_at``/``closed_at``
    (they are history: the status events keep them).
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
    if to == "reopened":
        # Handled again from today: the past 办结/销号 are history (the status events keep them), not
        # the matter's current state, and the clock starts again, or it would be overdue at once.
        data["resolved_at"] = None
        data["closed_at"] = None
        cat = _category(ctx, data.get("category"))
        days = cat.get("deadline_days") if cat else None
        # Without a category default there is no rule to count by: the deadline staff set stays (the
        # console's dispatch form offers to set a new one when they hand the matter out again).
        if isinstance(days, int) and not isinstance(days, bool):
            data["deadline"] = proxy.add_workdays(proxy.local_date(at), days).isoformat()
            meta["deadline"] = stamp
            data["paused_workdays"] = 0     # the days it waited for materials moved the old deadline
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


def _mark_applied(ctx: _Ctx, event: StoredRecord) -> None:
    """A kept-not-applied event that staff decided counts after all."""
    seq = ctx.store.next_seq()
    data = dict(event.data, applied=True)
    meta = dict(event.meta, applied={"v": seq, "at": ctx.now_iso, "u": ctx.actor.user_id, "o": ctx.actor.origin})
    _write(ctx, StoredRecord("matter_events", event.id, seq, False, data, meta, event.keys, event.created_at,
                             ctx.now_iso, event.created_by, ctx.actor.user_id), event.keys, seq)
