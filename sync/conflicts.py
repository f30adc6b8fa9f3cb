"""Conflicts and rejections recorded (protocol §4, §6): a record in ``conflicts`` that keeps both sides.

Resolving them is ``sync.resolve``.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable

import msgspec

from .context import _Ctx, uuid7
from .errors import MutationRejected
from .keys import _area_of, _conflict_keys
from .protocol import MutationError, MutationIn, PushResult
from .schema import is_uuid
from .scope import HOUSEHOLD_LINKED, conflict_keys, visible
from .writes import _write_new


def _err(code: str, message: str) -> Any:
    from .protocol import MutationError
    return MutationError(code=code, message=message)


_DUP_NS = uuid.UUID("6f1c2d0e-9a57-4c1b-8f3e-2b7d5a9c4e10")


def _reject(ctx: _Ctx, m: MutationIn, e: MutationRejected, cid: str | None = None) -> PushResult:
    """Store a rejection where its author (and their staff) can see it, and say why."""
    rid = m.id if isinstance(m.id, str) and len(m.id) <= 100 else None
    if cid is not None and ctx.get("conflicts", cid) is not None:
        return PushResult(mid=m.mid, status="rejected", error=_err(e.code, e.message), conflict_id=cid,
                          id=rid if rid and is_uuid(rid) else None)
    cid = cid or uuid7()
    area = None
    if isinstance(m.collection, str) and m.collection in HOUSEHOLD_LINKED and rid and is_uuid(rid):
        target = ctx.get(m.collection, rid.lower())
        # only a record the author may see gives the rejection its place (finding 8: no oracle)
        if target is not None and visible(ctx.keys, target.keys):
            area = _area_of(ctx, m.collection, target.data)
    mutation = _mutation_json(m)
    data = {"kind": "rejected", "collection": m.collection if isinstance(m.collection, str) else None,
            "record_id": rid, "mutation": mutation, "fields": None,
            "error": {"code": e.code, "message": e.message}, "author_id": ctx.actor.user_id,
            "device_id": ctx.actor.device_id, "involved": [ctx.actor.user_id], "area_id": area,
            "status": "open", "resolution": None, "value": None, "resolved_by": None, "resolved_at": None}
    areas = [area] if area else list(ctx.actor.areas)
    keys = conflict_keys(ctx.tree, [ctx.actor.user_id], areas) if not area else \
        _conflict_keys(ctx, m.collection if isinstance(m.collection, str) else None, rid.lower() if rid else None,
                       [ctx.actor.user_id], area)
    _write_new(ctx, "conflicts", cid, data, keys)
    return PushResult(mid=m.mid, status="rejected", error=_err(e.code, e.message), conflict_id=cid,
                      id=rid if rid and is_uuid(rid) else None)


def _mutation_json(m: MutationIn) -> dict[str, Any]:
    out = {"mid": m.mid, "collection": m.collection, "id": m.id, "op": m.op, "base": m.base,
           "fields": m.fields, "at": m.at}
    try:
        size = len(msgspec.json.encode(out))
    except (TypeError, msgspec.EncodeError):
        size = 1 << 30
    if size > 64 * 1024:  # keep the evidence bounded; the reason is what matters
        out["fields"] = {"_truncated": True}
    return out


def _conflict(ctx: _Ctx, m: MutationIn, kind: str, coll: str, rid: str, fields: dict[str, Any] | None,
              others: Iterable[str | None], area: str | None) -> str:
    cid = uuid7()
    involved = sorted({ctx.actor.user_id, *[o for o in others if o]})
    data = {"kind": kind, "collection": coll, "record_id": rid, "mutation": _mutation_json(m), "fields": fields,
            "error": None, "author_id": ctx.actor.user_id, "device_id": ctx.actor.device_id, "involved": involved,
            "area_id": area, "status": "open", "resolution": None, "value": None, "resolved_by": None,
            "resolved_at": None}
    _write_new(ctx, "conflicts", cid, data, _conflict_keys(ctx, coll, rid, involved, area))
    return cid
