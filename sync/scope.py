"""Scope (protocol §3) as scope keys.

Every record carries a set of keys; every user has a set of keys; a user sees a record when the
two sets meet. A change of a record's keys is itself a change in the feed: the keys it leaves
produce ``removed`` for the users who saw it through them, the keys it enters make it appear.

Keys:
    ``a:<area>``  data of an area and everything below it (households and what hangs off them)
    ``n:<area>``  the area record itself (names of the areas above a worker, or of an agent's village)
    ``d:<user>``  a matter delegated to the user, its events and attachments, its household and residents
    ``u:<user>``  the user's own user record and the conflicts that involve their edits
    ``un:<area>`` user records of people working in the area or below it
    ``ux:<area>`` user records of people working exactly at that area (town staff for a worker)
    ``c:<area>``  conflicts of the area and below (staff)
    ``g:all``     the shared catalogue
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from .store import AreaTree

HOUSEHOLD_LINKED = frozenset({"households", "residents", "visits", "matters", "matter_events", "attachments"})

# -- sensitive (信访) matters: the one definition (issue 12, finding 4) -------------------------------
# A matter is sensitive when its category is flagged sensitive in the catalogue, or when it is on
# a sensitive line (the 信访 line): either way only its handling chain sees it and every read is
# audited. The engine stores the result in the matter's computed ``sensitive`` field and every
# reader (pull, console lists, search, dashboard, reports, exports, audit) uses that field.
SENSITIVE_LINES = frozenset({"xinfang"})
# A key nobody holds: it marks a sensitive matter and everything that hangs off it, so that pull
# can audit every read of one (sensitive_reads) without looking the matter up.
SENSITIVE_KEY = "x:sensitive"
# Areas whose keys still see a sensitive matter: the town's staff and above, not the village's grids.
SENSITIVE_CHAIN_LEVELS = frozenset({"province", "city", "county", "district", "town", "street"})


def matter_sensitive(matter: dict[str, Any], category: dict[str, Any] | None) -> bool:
    """Whether a matter is sensitive (信访), from its category's catalogue entry and its line."""
    return bool(category and category.get("sensitive")) or matter.get("line") in SENSITIVE_LINES


def is_sensitive(matter: dict[str, Any]) -> bool:
    """Whether a stored matter is sensitive: its computed field, set by the engine on every write."""
    return bool(matter.get("sensitive"))


@dataclass(frozen=True)
class Actor:
    """Who is pushing or pulling: the user, their role and areas, and the device lineage."""

    user_id: str
    role: str
    areas: tuple[str, ...]
    device_id: str
    origin: str  # device lineage id (devices linked by previous_device_id share it)

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "admin")


def user_keys(actor: Actor, tree: AreaTree) -> frozenset[str]:
    """The keys a user sees records under. Depends only on role, areas and the tree."""
    me = actor.user_id
    keys = {f"u:{me}", f"d:{me}", "g:all"}
    areas = [a for a in actor.areas if a in tree]
    if actor.role == "admin":
        areas = areas or tree.roots()
        for a in areas:
            keys |= {f"a:{a}", f"c:{a}", f"un:{a}"}
            keys |= {f"n:{x}" for x in tree.path(a)[1:]}
    elif actor.role == "staff":
        for a in areas:
            keys |= {f"a:{a}", f"c:{a}", f"un:{a}"}
            keys |= {f"n:{x}" for x in tree.path(a)[1:]}
            keys |= {f"ux:{x}" for x in tree.path(a)[1:]}
    elif actor.role == "grid_worker":
        for g in areas:
            keys.add(f"a:{g}")
            keys |= {f"n:{x}" for x in tree.path(g)[1:]}
            v = tree.village_of(g) or g
            keys.add(f"un:{v}")
            keys |= {f"ux:{x}" for x in tree.path(v)[1:]}
    elif actor.role == "proxy_agent":
        for v in areas:
            keys |= {f"n:{x}" for x in tree.path(v)}
            keys |= {f"n:{x}" for x in tree.subtree(v)}
            keys.add(f"un:{v}")
            keys |= {f"ux:{x}" for x in tree.path(v)[1:]}
    return frozenset(keys)


def scope_hash(actor: Actor) -> str:
    """Identifies a scope for cursors: role and areas (protocol §5: a change of either expires cursors).

    Not the derived keys: a new area added under an agent's village adds a key, yet loses nothing
    already delivered (areas never move, so no existing record enters a scope without a new change).
    """
    return hashlib.sha256(("\n".join([actor.user_id, actor.role, *sorted(actor.areas)])).encode()).hexdigest()[:16]


def area_keys(tree: AreaTree, area_id: str | None) -> set[str]:
    return {f"a:{x}" for x in tree.path(area_id)}


def record_keys_for_area(tree: AreaTree, area_id: str) -> set[str]:
    """Keys of an area record."""
    return {f"n:{area_id}"} | area_keys(tree, area_id)


def user_record_keys(tree: AreaTree, user_id: str, areas: Iterable[str]) -> set[str]:
    keys = {f"u:{user_id}"}
    for a in areas:
        keys.add(f"ux:{a}")
        keys |= {f"un:{x}" for x in tree.path(a)}
    return keys


def conflict_keys(tree: AreaTree, involved: Iterable[str], area_ids: Iterable[str | None]) -> set[str]:
    keys = {f"u:{u}" for u in involved if u}
    for a in area_ids:
        keys |= {f"c:{x}" for x in tree.path(a)}
    return keys


def delegation_keys(assignees: Iterable[str | None]) -> set[str]:
    return {f"d:{a}" for a in assignees if a}


def data_keys(keys: Iterable[str]) -> set[str]:
    """The keys that give write access to household-linked data (not the names-only ones)."""
    return {k for k in keys if k.startswith(("a:", "d:"))}


def visible(user: frozenset[str], record: Iterable[str]) -> bool:
    return not user.isdisjoint(record)


def may_write_data(actor_keys: frozenset[str], record_keys: Iterable[str]) -> bool:
    return not data_keys(actor_keys).isdisjoint(record_keys)


def mask_for(role: str, coll: str, data: dict[str, Any]) -> dict[str, Any]:
    """Fields a role receives masked (resident ID numbers for grid workers and proxy agents)."""
    from .schema import COLLECTIONS, MASKED_ROLES, mask_id_number

    c = COLLECTIONS.get(coll)
    if c is None:
        return data
    masked = [f.name for f in c.fields if role in f.masked_for and data.get(f.name)]
    if coll == "conflicts" and role in MASKED_ROLES and data.get("collection") == "residents":
        fields = data.get("fields") or {}
        if "id_number" in fields:
            data = dict(data)
            f = dict(fields)
            f["id_number"] = {k: (mask_id_number(v) if k in ("incoming", "current") and isinstance(v, str) else v)
                              for k, v in f["id_number"].items()}
            data["fields"] = f
            mut = dict(data.get("mutation") or {})
            if isinstance(mut.get("fields"), dict) and isinstance(mut["fields"].get("id_number"), str):
                mut["fields"] = dict(mut["fields"], id_number=mask_id_number(mut["fields"]["id_number"]))
                data["mutation"] = mut
    if not masked:
        return data
    data = dict(data)
    for name in masked:
        data[name] = mask_id_number(data[name])
    return data
