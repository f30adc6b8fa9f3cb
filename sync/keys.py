"""The scope keys of a record (protocol §3), computed from its data and the records it hangs off.

``sync.scope`` has the key vocabulary and the user's side; this module has the record's side,
which needs the store: a resident takes its household's keys, a matter its household's area keys
(narrowed to the handling chain when it is sensitive) plus its assignee's, and so on, one function
per collection in ``KEYS_OF``. When a record's keys change, the records that hang off it follow
(``_cascade``). ``AREA_OF`` says which grid a household-linked record lives in.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from . import workflow
from .context import _Ctx, _household_grid
from .schema import COLLECTIONS
from .scope import (HOUSEHOLD_LINKED, SENSITIVE_CHAIN_LEVELS, SENSITIVE_KEY, area_keys, conflict_keys,
                    delegation_keys, user_record_keys)


def _area_of_existing(ctx: _Ctx, coll: str, rid: str) -> str | None:
    rec = ctx.get(coll, rid)
    return _area_of(ctx, coll, rec.data) if rec else None


def _area_of(ctx: _Ctx, coll: str, data: dict[str, Any]) -> str | None:
    """The grid a household-linked record lives in (None for any other record)."""
    rule = AREA_OF.get(coll)
    return rule(ctx, data) if rule is not None else None


def _grid_of_matter(ctx: _Ctx, matter_id: str) -> str | None:
    mt = ctx.get("matters", matter_id)
    return _household_grid(ctx, mt.data.get("household_id", "")) if mt else None


def _area_of_target(ctx: _Ctx, data: dict[str, Any]) -> str | None:
    """An attachment lives where the record it is attached to lives."""
    return _area_of_existing(ctx, data.get("record_collection", ""), data.get("record_id", "")) \
        if data.get("record_collection") in HOUSEHOLD_LINKED else None


AreaRule = Callable[[_Ctx, dict[str, Any]], "str | None"]

# Where each household-linked record lives: its grid, from its data and what it hangs off.
AREA_OF: dict[str, AreaRule] = {
    "households": lambda ctx, data: data.get("grid_id"),
    "residents": lambda ctx, data: _household_grid(ctx, data.get("household_id", "")),
    "visits": lambda ctx, data: _household_grid(ctx, data.get("household_id", "")),
    "matters": lambda ctx, data: _household_grid(ctx, data.get("household_id", "")),
    "matter_events": lambda ctx, data: _grid_of_matter(ctx, data.get("matter_id", "")),
    "attachments": _area_of_target,
}


def _keys_for(ctx: _Ctx, coll: str, rid: str, data: dict[str, Any]) -> set[str]:
    """The scope keys of a record, from its data and the records it hangs off (``KEYS_OF``)."""
    return KEYS_OF[coll](ctx, rid, data)


def _area_record_keys(ctx: _Ctx, rid: str, data: dict[str, Any]) -> set[str]:
    return {f"n:{rid}", f"a:{rid}"} | area_keys(ctx.tree, data.get("parent_id"))


def _household_keys(ctx: _Ctx, rid: str, data: dict[str, Any]) -> set[str]:
    """Its grid and the areas above, and the agents of its matters while they are delegated."""
    return area_keys(ctx.tree, data.get("grid_id")) | delegation_keys(
        ctx.store.active_assignees(rid, workflow.DELEGATION_ENDED))


def _resident_keys(ctx: _Ctx, rid: str, data: dict[str, Any]) -> set[str]:
    """Its household's keys, delegations included (an agent carries the resident's card)."""
    h = ctx.get("households", data.get("household_id", ""))
    return set(h.keys) if h else set()


def _visit_keys(ctx: _Ctx, rid: str, data: dict[str, Any]) -> set[str]:
    """Its household's area keys only: agents see no visits (protocol §3)."""
    h = ctx.get("households", data.get("household_id", ""))
    return {k for k in h.keys if k.startswith("a:")} if h else set()


def _matter_keys(ctx: _Ctx, rid: str, data: dict[str, Any]) -> set[str]:
    h = ctx.get("households", data.get("household_id", ""))
    keys = {k for k in h.keys if k.startswith("a:")} if h else set()
    if data.get("sensitive"):
        # 信访: only the handling chain sees it: the staff of the town and above, whoever raised
        # it and its delegated agent; x:sensitive marks it (and what hangs off it) for the read audit.
        # (the one who raised it sees it while it is handled, like its agent)
        keys = {k for k in keys if ctx.tree.level.get(k[2:]) in SENSITIVE_CHAIN_LEVELS} | {SENSITIVE_KEY}
        if workflow.delegation_active(data.get("status") or workflow.INITIAL):
            own = ctx.get("matters", rid)
            keys |= delegation_keys([own.created_by if own else ctx.actor.user_id])
    if workflow.delegation_active(data.get("status") or workflow.INITIAL):
        keys |= delegation_keys([data.get("assignee_id")])
    return keys


def _matter_event_keys(ctx: _Ctx, rid: str, data: dict[str, Any]) -> set[str]:
    mt = ctx.get("matters", data.get("matter_id", ""))
    return set(mt.keys) if mt else set()


def _attachment_keys(ctx: _Ctx, rid: str, data: dict[str, Any]) -> set[str]:
    target = ctx.get(data.get("record_collection", ""), data.get("record_id", "")) \
        if data.get("record_collection") in HOUSEHOLD_LINKED else None
    return set(target.keys) if target else set()


KeysRule = Callable[[_Ctx, str, dict[str, Any]], set[str]]

# The scope keys of a record of each collection (scope.py has the key vocabulary).
KEYS_OF: dict[str, KeysRule] = {
    "areas": _area_record_keys,
    "users": lambda ctx, rid, data: user_record_keys(ctx.tree, rid, data.get("areas") or []),
    "categories": lambda ctx, rid, data: {"g:all"},
    "households": _household_keys,
    "residents": _resident_keys,
    "visits": _visit_keys,
    "matters": _matter_keys,
    "matter_events": _matter_event_keys,
    "attachments": _attachment_keys,
    "conflicts": lambda ctx, rid, data: conflict_keys(ctx.tree, data.get("involved") or [], [data.get("area_id")]),
}


def _conflict_keys(ctx: _Ctx, coll: str | None, rid: str | None, involved: Iterable[str],
                   area: str | None) -> set[str]:
    """A conflict is seen by whoever it involves and the staff of its place; one about a sensitive
    (信访) record only by the staff of its handling chain, as the record itself (finding 4)."""
    keys = conflict_keys(ctx.tree, involved, [area])
    rec = ctx.get(coll, rid) if coll in COLLECTIONS and isinstance(rid, str) else None
    if rec is not None and SENSITIVE_KEY in rec.keys:
        keys = {k for k in keys if not k.startswith("c:") or ctx.tree.level.get(k[2:]) in SENSITIVE_CHAIN_LEVELS}
    return keys


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
    rec = ctx.get(coll, rid)
    if rec is None:
        return
    for cid in ctx.store.conflict_ids_about([rid]):
        c = ctx.get("conflicts", cid)
        area = c.data.get("area_id") if c else None
        if c is None or not area:
            continue      # a rejection without a place is seen by its author (and their staff) only
        new = _conflict_keys(ctx, coll, rid, c.data.get("involved") or [], area)
        if new != set(c.keys):
            ctx.forget()
            ctx.store.set_keys("conflicts", cid, c.keys, new, ctx.store.next_seq())


def _refresh_keys(ctx: _Ctx, coll: str, rid: str, depth: int = 0) -> None:
    rec = ctx.get(coll, rid)
    if rec is None or depth > 6:
        return
    if coll == "attachments" and rec.data.get("record_collection") not in HOUSEHOLD_LINKED:
        return
    new = _keys_for(ctx, coll, rid, rec.data)
    if new == set(rec.keys):
        return
    ctx.forget()
    ctx.store.set_keys(coll, rid, rec.keys, new, ctx.store.next_seq())
    _cascade(ctx, coll, rid, rec.keys, new, depth)


def _delegation_changed(ctx: _Ctx, matter: dict[str, Any]) -> None:
    """A matter's assignee or status changed: its household (and so residents) may gain or lose d: keys."""
    hid = matter.get("household_id")
    if hid:
        _refresh_keys(ctx, "households", hid)
