"""The conflicts queue: both values side by side with who and when; keep current, take incoming, or edit.

Resolving is a mutation of the conflict record pushed through the engine (protocol §6), exactly
as a phone resolves one offline: first resolution wins, the others get ``already_resolved``.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from sync.engine import area_tree
from sync.schema import COLLECTIONS
from sync.scope import user_keys, visible
from sync.store import StoredRecord

from .. import metrics
from .core import FormData, Page, Refused, run, run_form
from .records import user_names


def _visible_conflicts(page: Page, status: str) -> list[StoredRecord]:
    keys = user_keys(page.actor(), area_tree(page.store))
    ids = page.store.live_ids_where("conflicts", "status", status)
    out = [c for c in page.store.get_many("conflicts", ids).values() if visible(keys, c.keys)]
    out.sort(key=lambda c: c.created_at, reverse=True)
    return out


def _conflict(page: Page, conflict_id: str) -> StoredRecord:
    c = page.store.get("conflicts", conflict_id)
    if c is None or not visible(user_keys(page.actor(), area_tree(page.store)), c.keys):
        raise Refused(404, page.t("没有找到这条记录，或不在您的管辖范围内。"))
    return c


def record_link(coll: str | None, rid: str | None, page: Page) -> str | None:
    """Where a staff user looks at the record a conflict is about."""
    if not coll or not rid:
        return None
    if coll == "matters":
        return f"/staff/matters/{rid}"
    if coll == "households":
        return f"/staff/households/{rid}"
    rec = page.store.get(coll, rid)
    if rec is None:
        return None
    if coll == "matter_events":
        return f"/staff/matters/{rec.data.get('matter_id')}"
    if rec.data.get("household_id"):
        return f"/staff/households/{rec.data['household_id']}"
    return None


@get("/staff/conflicts", include_in_schema=False)
async def conflict_list(request: Request) -> Response[Any]:
    return await run(request, _conflict_list)


def _conflict_list(page: Page) -> Response[Any]:
    status = "resolved" if page.query.get("status") == "resolved" else "open"
    items = _visible_conflicts(page, status)
    # issue 14: what the dashboard's sync figures open — the conflicts (or rejected changes) of an area
    area, kind = page.query.get("area") or "", page.query.get("kind") or ""
    if kind not in ("", "conflict", "rejected"):
        raise Refused(400, "类型只能是冲突或被拒绝的修改。")
    if area not in page.allowed:   # as the matters list: an area outside the user's scope is no filter
        area = ""
    if area:
        subtree = set(page.tree.subtree(area))
        users = metrics.area_users(page.store, subtree)
        items = [c for c in items if metrics.conflict_of_area(c.data, subtree, users)]
    if kind:
        items = [c for c in items if (c.data.get("kind") == "rejected") == (kind == "rejected")]
    return page.render("staff/conflicts.html", items=items[:200], total=len(items), status=status,
                       names=user_names(page.store), area=area, kind=kind)


@get("/staff/conflicts/{conflict_id:str}", include_in_schema=False)
async def conflict_detail(request: Request, conflict_id: FromPath[str]) -> Response[Any]:
    return await run(request, _conflict_detail, conflict_id)


def _show(v: Any) -> str:
    """A value as it goes into a form field (the raw value, not its label: it is sent back as is)."""
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


HIDDEN: dict[str, Any] = {}   # the record is outside the user's scope now


def held_now(page: Page, d: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """What the record a conflict is about holds now: (the collection its fields belong to, its data),
    data None when it is deleted or gone, ``HIDDEN`` when the user may no longer see it. The conflict's ``current`` is the value when the edits
    collided (before the later edit won, if it did), not necessarily the value saved now."""
    coll, rid = d.get("collection"), d.get("record_id")
    if not coll or not rid or coll not in COLLECTIONS:
        return coll, None
    rec = page.store.get(coll, rid)
    if coll == "matter_events" and d.get("kind") in ("transition", "delegation"):
        # a contested move or an agent's late work: the fields (status, assignee_id) are the matter's
        coll, rec = "matters", page.store.get("matters", (rec.data.get("matter_id") if rec else None) or "")
    if rec is not None and not page.sees(rec):
        # moved out of the user's area since (or became 信访): what it holds now is not theirs to read
        return coll, HIDDEN
    return coll, (rec.data if rec is not None and not rec.deleted else None)


def conflict_rows(page: Page, d: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per conflicting field: what the record holds now, and which side that is, and what lost."""
    coll, now = held_now(page, d)
    rows = []
    for k, v in (d.get("fields") or {}).items():
        if not isinstance(v, dict):
            continue
        value_now = now.get(k) if now is not None else None
        if now is HIDDEN:
            side = "hidden"
        elif now is None:
            side = "deleted"
        elif value_now == v.get("incoming"):
            side = "incoming"
        elif value_now == v.get("current"):
            side = "current"
        else:
            side = "later"   # changed again after the conflict
        winner = v.get("winner") if v.get("winner") in ("incoming", "current") else "current"
        rows.append({"name": k, "coll": coll, "now": value_now, "side": side, "winner": winner,
                     "lost": "current" if winner == "incoming" else "incoming", **v})
    return rows


# Fields holding the id of a record a person knows by a name: which collection, which field names it.
_NAMED_BY = {"household_id": ("households", "head_name"), "resident_id": ("residents", "name"),
             "for_resident_id": ("residents", "name"), "matter_id": ("matters", "title"),
             "duplicate_of": ("matters", "title")}


def _record_names(page: Page, d: dict[str, Any]) -> dict[str, str]:
    """Names for the record ids a conflict's values hold (a household by its head …), of the records
    this user may see; any other id stays unnamed (shown as "—", never as the id)."""
    values: list[tuple[str, Any]] = list(((d.get("mutation") or {}).get("fields") or {}).items()) \
        if isinstance((d.get("mutation") or {}).get("fields"), dict) else []
    for k, v in (d.get("fields") or {}).items():
        if isinstance(v, dict):
            values += [(k, v.get("incoming")), (k, v.get("current"))]
    out: dict[str, str] = {}
    for k, v in values:
        if k in _NAMED_BY and isinstance(v, str) and v not in out:
            coll, field = _NAMED_BY[k]
            rec = page.store.get(coll, v)
            if rec is not None and page.sees(rec) and rec.data.get(field):
                out[v] = str(rec.data[field])
    return out


def _conflict_detail(page: Page, conflict_id: str) -> Response[Any]:
    c = _conflict(page, conflict_id)
    d = c.data
    names = {**page.names, **user_names(page.store), **_record_names(page, d)}
    return page.render("staff/conflict.html", c=c, d=d, rows=conflict_rows(page, d), names=names,
                       link=record_link(d.get("collection"), d.get("record_id"), page), show=_show)


def _value_of(type_: str, raw: str) -> Any:
    if type_ in ("str", "text", "enum", "date", "datetime", "uuid", "sha256"):
        return raw if raw != "" else None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@post("/staff/conflicts/{conflict_id:str}/resolve", include_in_schema=False, status_code=200)
async def conflict_resolve(request: Request, data: FormData, conflict_id: FromPath[str]) -> Response[Any]:
    return await run_form(request, data, _conflict_resolve, conflict_id)


def _conflict_resolve(page: Page, form: dict[str, Any], conflict_id: str) -> Response[Any]:
    c = _conflict(page, conflict_id)
    resolution = str(form.get("resolution") or "")
    if resolution not in ("current", "incoming", "value"):
        return page.back(f"/staff/conflicts/{c.id}", "invalid_resolution")
    fields: dict[str, Any] = {"resolution": resolution}
    if resolution == "value":
        coll = COLLECTIONS.get(c.data.get("collection") or "")
        value = {}
        for k in (c.data.get("fields") or {}):
            raw = str(form.get("value." + k) or "")
            value[k] = _value_of(coll.by_name[k].type if coll and k in coll.by_name else "json", raw)
        fields["value"] = value
    result = page.push({"collection": "conflicts", "id": c.id, "base": c.version, "fields": fields})[0]
    page.audit("staff.conflict.resolve", "conflicts", c.id, {"resolution": resolution, "result": result.status})
    if result.status == "rejected":
        return page.back(f"/staff/conflicts/{c.id}", "rejected", why=page.why(result))
    return page.back("/staff/conflicts", "resolved")


ROUTES: list[Any] = [conflict_list, conflict_detail, conflict_resolve]
