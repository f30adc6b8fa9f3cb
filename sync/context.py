"""What one push works with: the store, the pusher, their keys and the time, and the reads the rules share.

Every module of the engine takes this context (``_Ctx``) first. It is made once per push
(``push._push``) and lives as long as that push's transaction.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Literal

from .scope import Actor, data_keys, user_keys
from .storage import Store
from .store import AreaTree, StoredRecord

Status = Literal["applied", "merged", "conflict", "rejected"]


STAFF_ROLES = ("staff", "admin")


# The largest version a phone's JavaScript counts exactly (2**53 - 1): any base above it is no version.
MAX_VERSION = (1 << 53) - 1


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7) for records the server creates (conflicts)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def area_tree(store: Store) -> AreaTree:
    """The area tree, cached on the store until an area changes."""
    v = store.areas_version()
    cached: tuple[int, AreaTree] | None = getattr(store, "_tree_cache", None)
    if cached and cached[0] == v:
        return cached[1]
    tree = AreaTree.load(store.all_areas())
    # an attribute of the store object, whatever its class: the Store protocol does not declare it
    setattr(store, "_tree_cache", (v, tree))
    return tree


@dataclass
class _Ctx:
    """One push: who pushes, their keys (``data_keys``: those that give write access to data), the time.

    ``get`` reads a record through a memo kept for one mutation: the rules of one mutation read the
    same household or matter several times (its checks, then its keys), and each store read decodes
    the stored JSON again. The memo is forgotten at every write (``writes._write``, a change of keys)
    and before each mutation (``push._push``), so a rule never reads a record older than the store's.
    """

    store: Store
    actor: Actor
    tree: AreaTree
    keys: frozenset[str]
    now: datetime
    now_iso: str
    touched_areas: bool = False
    data_keys: frozenset[str] = frozenset()
    _memo: dict[tuple[str, str], StoredRecord | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_keys = frozenset(data_keys(self.keys))

    def rescope(self, tree: AreaTree) -> None:
        """The area tree changed (an area was written): the pusher's keys follow."""
        self.tree = tree
        self.keys = user_keys(self.actor, tree)
        self.data_keys = frozenset(data_keys(self.keys))

    def may_write(self, record_keys: Iterable[str]) -> bool:
        """``scope.may_write_data`` for this pusher, their data keys computed once per push."""
        return not self.data_keys.isdisjoint(record_keys)

    def get(self, coll: str, rid: str) -> StoredRecord | None:
        """``store.get`` through the mutation's memo (the same object for the same record)."""
        key = (coll, rid)
        try:
            return self._memo[key]
        except KeyError:
            rec = self._memo[key] = self.store.get(coll, rid)
            return rec

    def forget(self) -> None:
        """Drop the memo: something was written, or another mutation begins."""
        self._memo.clear()


def _household_grid(ctx: _Ctx, household_id: str) -> str | None:
    h = ctx.get("households", household_id)
    return h.data.get("grid_id") if h else None


def _category(ctx: _Ctx, code: Any) -> dict[str, Any] | None:
    """The catalogue entry of a category code (None for none or an unknown code)."""
    if not isinstance(code, str) or not code:
        return None
    for cid in ctx.store.ids_where("categories", "code", code):
        rec = ctx.get("categories", cid)
        if rec is not None and not rec.deleted:
            return rec.data
    return None


def _events_of(ctx: _Ctx, matter_id: str) -> list[dict[str, Any]]:
    ids = ctx.store.ids_where("matter_events", "matter_id", matter_id)
    return [r.data for r in ctx.store.get_many("matter_events", ids).values() if not r.deleted]
