"""The merge rules of protocol §6 as pure functions: (record, field metadata, mutation) -> decision.

Field metadata (``meta``) is kept per record and field::

    {"v": version at which the field last changed, "at": ISO time of that edit (UTC),
     "u": user id, "o": origin (the device lineage that made it),
     "e": {element: [version added, origin]}   # set-valued fields only}

Nothing here touches the database; ``engine.py`` feeds these functions and stores what they
decide. Every rule has named cases in ``tests/test_merge.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .schema import Collection

FieldMeta = dict[str, Any]


@dataclass
class Edit:
    """Who makes a change, when and at which new version."""

    version: int      # the version the record gets if anything changes
    at: str           # ISO time in UTC (clamped by the engine)
    user: str         # user id
    origin: str       # device lineage id: two linked devices are one origin


@dataclass
class FieldConflict:
    incoming: Any
    current: Any
    incoming_at: str
    current_at: str | None
    current_by: str | None
    winner: str  # "incoming" | "current"

    def as_json(self) -> dict[str, Any]:
        return {"incoming": self.incoming, "current": self.current, "incoming_at": self.incoming_at,
                "current_at": self.current_at, "current_by": self.current_by, "winner": self.winner}


@dataclass
class UpdateDecision:
    changes: dict[str, Any] = field(default_factory=dict)       # field -> new value to store
    meta: dict[str, FieldMeta] = field(default_factory=dict)    # field -> new metadata
    conflicts: dict[str, FieldConflict] = field(default_factory=dict)
    meta_only: dict[str, FieldMeta] = field(default_factory=dict)  # same value, new add records
    others_changed: bool = False  # someone else changed the record since base (for "merged")

    @property
    def status(self) -> Literal["applied", "merged", "conflict"]:
        if self.conflicts:
            return "conflict"
        if self.others_changed and self.changes:
            return "merged"
        return "applied"


def new_meta(edit: Edit) -> FieldMeta:
    return {"v": edit.version, "at": edit.at, "u": edit.user, "o": edit.origin}


def changed_by_other_since(meta: FieldMeta | None, base: int, origin: str) -> bool:
    """Rule 1's test: did another device change this field after ``base``?

    Only the field's last change is kept. If that change is this device's own, nobody changed
    it after the device's own last change, so the device wins by rule 1 whatever the base.
    """
    if not meta:
        return False
    return int(meta["v"]) > base and meta.get("o") != origin


def record_changed_by_other_since(meta: dict[str, FieldMeta], base: int, origin: str) -> bool:
    return any(changed_by_other_since(m, base, origin) for m in meta.values())


def _entries(raw: Any, meta: FieldMeta | None) -> dict[str, int]:
    """Per element: the latest add of each device, {origin: version} (older data: [version, origin])."""
    if isinstance(raw, dict):
        return {str(o): int(v) for o, v in raw.items()}
    if isinstance(raw, list) and len(raw) == 2:
        return {str(raw[1]): int(raw[0])}
    return {str((meta or {}).get("o")): int((meta or {}).get("v", 0))}


def apply_set_delta(current: list[str] | None, meta: FieldMeta | None, delta: dict[str, list[str]],
                    base: int, edit: Edit) -> tuple[list[str], FieldMeta]:
    """Element-wise merge of a set-valued field (tags). Never a conflict.

    Every add is recorded per device, even of an element already present. A remove takes away
    only the adds it could have seen (at or below its base) and the device's own; an add by
    another device after the base keeps the element: concurrent adds and removes both survive,
    and when one device adds what another removes, the add wins.
    """
    old = (meta or {}).get("e") or {}
    values = set(current or [])
    elems = {x: _entries(old.get(x), meta) for x in values}
    for x in delta.get("add", []):
        values.add(x)
        elems.setdefault(x, {})[edit.origin] = edit.version
    for x in delta.get("remove", []):
        if x not in values:
            continue
        keep = {o: v for o, v in elems.get(x, {}).items() if o != edit.origin and v > base}
        if keep:
            elems[x] = keep  # added concurrently by another device: the add wins
        else:
            values.discard(x)
            elems.pop(x, None)
    out = sorted(values)
    if out != sorted(current or []) or meta is None:
        m = new_meta(edit)
    else:  # only who-added-what changed: the field itself did not change
        m = {k: v for k, v in meta.items() if k != "e"}
    m["e"] = {x: elems[x] for x in out}
    return out, m


def merge_update(coll: Collection, data: dict[str, Any], meta: dict[str, FieldMeta], base: int,
                 fields: dict[str, Any], edit: Edit) -> UpdateDecision:
    """Decide an update of a live record field by field (rules 1-3 and set-valued fields)."""
    d = UpdateDecision(others_changed=record_changed_by_other_since(meta, base, edit.origin))
    for name, incoming in fields.items():
        f = coll.by_name[name]
        current = data.get(name)
        fm = meta.get(name)
        if f.set_valued:
            new, m = apply_set_delta(current, fm, incoming, base, edit)
            if new != sorted(current or []):
                d.changes[name] = new
                d.meta[name] = m
            elif m != fm:
                # the value is the same but who-added-what changed (a re-add): a new version, so that a
                # remove based on it saw the re-add and one based on an older version did not
                d.meta_only[name] = m
            continue
        if incoming == current:
            continue  # rule 2, or simply nothing to do
        if not changed_by_other_since(fm, base, edit.origin):
            d.changes[name] = incoming  # rule 1
            d.meta[name] = new_meta(edit)
            continue
        # rule 3: a real conflict on this field; the later edit wins, a tie keeps the current value
        assert fm is not None
        incoming_wins = edit.at > str(fm.get("at") or "")
        d.conflicts[name] = FieldConflict(incoming=incoming, current=current, incoming_at=edit.at,
                                          current_at=fm.get("at"), current_by=fm.get("u"),
                                          winner="incoming" if incoming_wins else "current")
        if incoming_wins:
            d.changes[name] = incoming
            d.meta[name] = new_meta(edit)
    return d


def create_record(coll: Collection, fields: dict[str, Any], edit: Edit) -> tuple[dict[str, Any], dict[str, FieldMeta]]:
    """The data and metadata of a new record from validated create fields."""
    data: dict[str, Any] = {}
    meta: dict[str, FieldMeta] = {}
    for name, value in fields.items():
        f = coll.by_name[name]
        if f.set_valued:
            value, m = apply_set_delta([], None, value, 0, edit)
            meta[name] = m
        else:
            meta[name] = new_meta(edit)
        data[name] = value
    return data, meta


def same_content(coll: Collection, existing: dict[str, Any], fields: dict[str, Any]) -> bool:
    """For append-only collections: is a re-sent create the same record (same non-computed fields)?"""
    for f in coll.fields:
        if f.computed:
            continue
        want = fields.get(f.name)
        if f.set_valued and isinstance(want, dict):
            want = sorted(want.get("add", []))
        have = existing.get(f.name)
        if want in (None, [], {}) and have in (None, [], {}):
            continue
        if want != have:
            return False
    return True
