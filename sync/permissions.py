"""Who may write what (protocol §3): roles per collection, scope, fields, references, moves, hand-overs.

Every check raises ``MutationRejected`` with the code and words the protocol and the tests pin. A
record or reference outside the pusher's scope is answered exactly as one that does not exist
(issue 12, finding 8). An update of an existing record and a conflict's resolution go through the
same ``_check_update`` (finding 3: a resolution is a write).
"""

from __future__ import annotations

from typing import Any, Iterable

from .context import _Ctx, _category, _events_of, _household_grid
from .errors import MutationRejected
from .keys import _area_of
from .schema import COLLECTIONS, Collection
from .scope import HOUSEHOLD_LINKED, SENSITIVE_CHAIN_LEVELS, matter_sensitive, visible
from .store import StoredRecord


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
        ok = ctx.may_write(keys)
    elif coll == "areas":
        # An admin with areas writes only inside them (the area itself or below: its keys hold the
        # a: keys of its path); an admin without areas administers the whole tree, roots included.
        ok = ctx.actor.role == "admin" and (not any(a in ctx.tree for a in ctx.actor.areas) or ctx.may_write(keys))
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


def _live(ctx: _Ctx, coll: str, rid: Any, what: str) -> StoredRecord:
    """A referenced record that exists, is not deleted and is in the pusher's scope.

    A reference to a record outside scope is answered exactly as one to a record that does not
    exist (finding 8): the answer must not tell whether an id is used somewhere else.
    """
    rec = ctx.get(coll, rid) if isinstance(rid, str) else None
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


def _agents_village_household(ctx: _Ctx, coll: str, fields: dict[str, Any]) -> StoredRecord | None:
    """不下山: a resident asks the proxy agent of their village directly, and the agent files the
    matter for them, handed to themselves. The one create on a household the agent does not yet
    hold; it must lie in the agent's own village (``_check_assignee`` checks the hand-over)."""
    if coll != "matters" or ctx.actor.role != "proxy_agent" or fields.get("assignee_id") != ctx.actor.user_id:
        return None
    h = ctx.get("households", fields["household_id"])
    if h is None or h.deleted:
        return None
    village = ctx.tree.village_of(h.data.get("grid_id") or "")
    if village is None or not any(village in ctx.tree.path(a) or a in ctx.tree.path(village) for a in ctx.actor.areas):
        return None
    return h


def _check_resident(ctx: _Ctx, resident_id: str, household_id: str) -> None:
    r = ctx.get("residents", resident_id)
    if r is None or r.deleted or r.data.get("household_id") != household_id:
        # one answer whether the resident does not exist or lives elsewhere (finding 8)
        raise MutationRejected("invalid_request", f"fields.resident_id: no resident {resident_id} in this household")


def _check_assignee(ctx: _Ctx, assignee_id: str, household_id: str, creating: bool) -> None:
    user = ctx.get("users", assignee_id)
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


def _may_still_write(ctx: _Ctx, c: StoredRecord) -> bool:
    """Whether the resolver may still write the conflict's record. An author who has lost it since
    (household moved away, delegation ended) can still dismiss the conflict ("current"), which then
    writes nothing; any other choice goes through the checks of an update and is refused."""
    target_coll, rid = c.data.get("collection"), c.data.get("record_id")
    if target_coll not in COLLECTIONS or not isinstance(rid, str):
        return False
    target = ctx.get(target_coll, rid)
    if target is None:
        return False
    if target_coll in HOUSEHOLD_LINKED:
        return ctx.may_write(target.keys)
    return ctx.actor.role == "admin"


def _was_delegated(ctx: _Ctx, matter_id: str) -> bool:
    """Whether the pushing proxy agent holds a delegation event of this matter (current or ended)."""
    return ctx.actor.role == "proxy_agent" and any(
        e.get("kind") == "delegation" and e.get("for_user_id") == ctx.actor.user_id for e in _events_of(ctx, matter_id))
