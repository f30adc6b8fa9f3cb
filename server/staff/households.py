"""Households: search, and the dossier (服务百姓档案): card, residents, visits and matters; blobs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import anyio
from litestar import Request, Response, get, post
from litestar.params import FromPath

from sync.errors import SyncError
from sync.schema import is_uuid, mask_id_number

from .. import metrics
from ..api import blob_response
from .core import FormData, Page, Refused, current_user, local_today, run, run_form, _page
from .matters import MAX_PAGE, _common
from .records import audit_sensitive, household_of, is_sensitive

PAGE_SIZE = 50


@get("/staff/households", include_in_schema=False)
async def household_search(request: Request) -> Response[Any]:
    return await run(request, _household_search)


def _household_search(page: Page) -> Response[Any]:
    q = (page.query.get("q") or "").strip()
    area = page.query.get("area") or ""
    tag = (page.query.get("tag") or "").strip()
    visited = page.query.get("visited") or ""   # issue 14: the dashboard's 走访覆盖 opens these
    areas = page.tree.subtree(area) if area in page.allowed else sorted(page.allowed)
    n = page.number("page", 1, 1, MAX_PAGE, "页码必须是 1 到 100000 之间的整数。")
    if visited:
        if visited not in ("30", "90"):
            raise Refused(400, "走访条件只能是近30天或近90天。")
        if q:
            raise Refused(400, "按走访筛选时不能同时按关键词查找，请清空查找框。")
        found, total = page.store.households_visited(areas, tag, *metrics.coverage_window(local_today(), int(visited)),
                                                     PAGE_SIZE, (n - 1) * PAGE_SIZE)
    else:
        found, total = page.store.household_search(areas, q, tag, PAGE_SIZE, (n - 1) * PAGE_SIZE)
    rows = [{"id": hid, **d} for hid, d in found]
    qs = urlencode({k: v for k, v in (("q", q), ("area", area), ("tag", tag), ("visited", visited)) if v})
    return page.render("staff/households.html", rows=rows, total=total, q=q, area=area, tag=tag,
                       visited=visited, options=page.options(), n=n, pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
                       qs=qs)


@get("/staff/households/{household_id:str}", include_in_schema=False)
async def household_dossier(request: Request, household_id: FromPath[str]) -> Response[Any]:
    return await run(request, _household_dossier, household_id)


def _household_dossier(page: Page, household_id: str, revealed: str = "") -> Response[Any]:
    """The dossier, ID numbers masked as the sync engine masks them for grid workers; ``revealed``
    is the one resident whose number is shown in full (and audited, ``_reveal_id_number``)."""
    h = household_of(page, household_id)
    residents = [{"id": rid, **d} for rid, d in page.store.residents_of(h.id)]
    for r in residents:
        r["id_number_shown"] = r.get("id_number") if r["id"] == revealed else mask_id_number(r.get("id_number"))
    visits = [{"id": vid, **d} for vid, d in page.store.visits_of(h.id, 200)]
    ctx = _common(page)
    matters = [{"id": mid, **d} for mid, d in page.store.household_matters(h.id, page.keys)]
    timeline = [{"kind": "visit", "at": v.get("visited_at") or "", "v": v} for v in visits] + \
               [{"kind": "matter", "at": m.get("raised_at") or "", "m": m} for m in matters]
    timeline.sort(key=lambda e: e["at"], reverse=True)
    shown = [m["id"] for m in matters if is_sensitive(m)]
    if shown:
        audit_sensitive(page, shown, "dossier")
    return page.render("staff/household.html", h=h, d=h.data, residents=residents, timeline=timeline,
                       grid_path=page.area_path(h.data.get("grid_id")), **ctx)


@post("/staff/households/{household_id:str}/id-number", include_in_schema=False, status_code=200)
async def reveal_id_number(request: Request, data: FormData, household_id: FromPath[str]) -> Response[Any]:
    return await run_form(request, data, _reveal_id_number, household_id)


def _reveal_id_number(page: Page, form: dict[str, Any], household_id: str) -> Response[Any]:
    """显示完整身份证号: one resident's full ID number, for staff and admins of the household's area,
    each showing written to the audit log (``id_number.read``) as sensitive reads are."""
    h = household_of(page, household_id)
    resident_id = str(form.get("resident_id") or "")
    rec = page.store.get("residents", resident_id) if is_uuid(resident_id) else None
    if rec is None or rec.deleted or rec.data.get("household_id") != h.id or not rec.data.get("id_number"):
        raise Refused(404)
    page.audit("id_number.read", "residents", rec.id, {"household_id": h.id})
    return _household_dossier(page, h.id, revealed=rec.id)


@get("/staff/blobs/{sha256:str}", include_in_schema=False)
async def staff_blob(request: Request, sha256: FromPath[str]) -> Response[Any]:
    """A photo, document or signature, to staff in whose scope a record refers to it."""
    def work() -> Response[Any] | None:
        user = current_user(request)
        if user is None:
            return None
        page = _page(request, user)
        try:
            blob = request.app.state["blobs"].open_for(page.store, page.actor(), sha256)
        except SyncError:
            return None
        return blob_response(blob, sha256)   # Cache-Control: no-store, nor a shared office computer

    found = await anyio.to_thread.run_sync(work)
    if found is None:
        return Response("Not found", status_code=404, media_type="text/plain; charset=utf-8")
    return found


ROUTES: list[Any] = [household_search, household_dossier, reveal_id_number, staff_blob]
