"""Pull (protocol §5): one page of the change feed for the actor's scope, and reads in scope."""

from __future__ import annotations

from typing import Any

from . import cursor as cursors
from .context import area_tree, now_utc
from .errors import SyncError
from .protocol import Change, PullResponse
from .scope import SENSITIVE_KEY, Actor, mask_for, scope_hash, user_keys, visible
from .storage import Store
from .store import StoredRecord, iso


DEFAULT_LIMIT = 500

_LEAN_DROP = ("id", "version", "deleted")

MAX_LIMIT = 1000


def pull(store: Store, actor: Actor, cursor_text: str | None, limit: int = DEFAULT_LIMIT,
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


def _matter_of(store: Store, coll: str, data: dict[str, Any]) -> str | None:
    if coll == "matter_events":
        return data.get("matter_id")
    if coll == "attachments":
        if data.get("record_collection") == "matters":
            return data.get("record_id")
        if data.get("record_collection") == "matter_events":
            ev = store.get("matter_events", data.get("record_id") or "")
            return ev.data.get("matter_id") if ev else None
    return None


def readable(store: Store, actor: Actor, coll: str, rid: str) -> StoredRecord | None:
    """A record if the actor may see it (for blob access and staff pages)."""
    rec = store.get(coll, rid)
    if rec is None:
        return None
    return rec if visible(user_keys(actor, area_tree(store)), rec.keys) else None
