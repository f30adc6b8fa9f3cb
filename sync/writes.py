"""The one write path of a record: its row and feed entries, its blob citations, the area cache."""

from __future__ import annotations

from typing import Any, Iterable

from . import blobs, merge
from .context import _Ctx
from .keys import _delegation_changed
from .merge import Edit
from .schema import COLLECTIONS, blob_refs
from .store import StoredRecord

# The collections with fields that refer to blobs: their writes keep the blob citations.
_CITING = frozenset(c.name for c in COLLECTIONS.values() if any(f.blob_ref for f in c.fields))


def _write(ctx: _Ctx, rec: StoredRecord, old_keys: Iterable[str], seq: int, new: bool = False) -> None:
    """The one write path of a record: the row, the feed, the blob citations, the area cache.

    ``new``: the record did not exist before this mutation (it cannot cite anything yet)."""
    ctx.forget()
    ctx.store.put(rec, old_keys, seq)
    if rec.collection in _CITING:
        blobs.record_citations(ctx.store, ctx.actor.user_id, ctx.keys, rec.collection, rec.id,
                               blob_refs(COLLECTIONS[rec.collection], rec.data), new_record=new)
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
