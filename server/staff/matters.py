"""Matters: the intake queue (统一集中受理), the list, the detail with its actions, the print view.

Every action is a batch of mutations pushed through the engine as the staff user's console
device (``Page.push``): field edits carry the version the page showed as ``base``, so an edit
that raced a phone's is merged by the same rules and, where both changed a field, recorded as
a conflict instead of silently overwriting it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath

from sync import proxy, workflow
from sync.engine import uuid7
from sync.schema import LEVELS, LINES, URGENCIES
from sync.storage import MATTER_SORTS, MatterFilter, MatterSort
from sync.store import StoredRecord

from .. import metrics
from .core import FormData, Page, Refused, local_today, parse_date, run, run_form
from .records import (attachments_of, audit_sensitive, blob_state, categories, category_name, conflicts_of, events_of,
                      is_sensitive,
                      matter_of, user_names, users_by_role)

PAGE_SIZE = 50
MAX_PAGE = 100_000  # a page number past it is a 400, never an OFFSET SQLite cannot hold
MOVE_LABELS = {"in_progress": "开始办理", "waiting_materials": "待补材料", "resolved": "办结",
               "closed": "核实销号", "reopened": "重新办理", "submitted": "退回待受理"}
OPEN_STATUSES = tuple(s for s in workflow.STATUSES if s not in metrics.FINISHED)


def working_days_after(start: date, days: int) -> date:
    """The date ``days`` working days (Monday–Friday) after ``start``."""
    d = start
    while days > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            days -= 1
    return d


# -- the list and the intake queue -----------------------------------------------------------

def _filters(page: Page) -> dict[str, str]:
    q = page.query
    keys = ("status", "category", "line", "area", "overdue", "supervised", "assignee", "channel", "q", "sort",
            "handling", *CARD_FILTERS)
    f = {k: (q.get(k) or "").strip() for k in keys}
    for k in ("start", "end", "rstart", "rend"):
        if f[k] and parse_date(f[k], None) is None:
            raise Refused(400, "日期格式不正确，应为 2000-01-01 到 2099-12-31 之间的 年-月-日。")
    if f["feedback"] not in ("", "rated", "satisfied"):
        raise Refused(400, "评价条件只能是“已评价”或“满意”。")
    return f


# issue 14: what the dashboard's cards and charts open (server/staff/dashboard.py): the raise period
# (start, end) and resolution period (rstart, rend) as inclusive local dates, status groups "done"
# (resolved, closed) and "counted" (all but merged duplicates), deadline/on_time/mountain/delegated
# flags ("1"), feedback ("rated", "satisfied").
CARD_FILTERS = ("start", "end", "rstart", "rend", "deadline", "on_time", "mountain", "delegated", "feedback")
STATUS_GROUPS = {"open": OPEN_STATUSES, "done": metrics.DONE}


def _next_day(value: str) -> str:
    day = parse_date(value, None)
    return (day + timedelta(days=1)).isoformat() if day else ""


def query_matters(page: Page, f: dict[str, str], limit: int | None = PAGE_SIZE, offset: int = 0
                  ) -> tuple[list[dict[str, Any]], int]:
    """The matters of the user's scope that pass the filters: (rows of one page, total count)."""
    area = f.get("area") or ""
    areas = page.tree.subtree(area) if area in page.allowed else sorted(page.allowed)
    if f.get("mountain") == "1":
        areas = [a for a in areas if page.tree.is_mountain(a)]
    today = local_today().isoformat()
    status = f.get("status") or ""
    flt = MatterFilter(
        statuses=STATUS_GROUPS.get(status) or ((status,) if status and status != "counted" else ()),
        not_statuses=("merged_duplicate",) if status == "counted" else (),
        raised_from=f.get("start") or "", raised_before=_next_day(f.get("end") or ""),
        resolved_from=f.get("rstart") or "", resolved_before=_next_day(f.get("rend") or ""),
        with_deadline=f.get("deadline") == "1", on_time=f.get("on_time") == "1", delegated=f.get("delegated") == "1",
        feedback=f.get("feedback") or "",
        category=f.get("category") or "", line=f.get("line") or "", channel=f.get("channel") or "",
        handling_mode=f.get("handling") or "", assignee_id=f.get("assignee") or "",
        supervised=f.get("supervised") == "1",
        overdue_on=today if f.get("overdue") == "1" else "", ended=metrics.FINISHED,
        text=f.get("q") or "")
    sort: MatterSort = next((s for s in MATTER_SORTS if s == f.get("sort")), "raised")
    # in scope = the engine's predicate (a 信访 matter only for its handling chain), within the area chosen
    rows, total = page.store.matters_page(areas, page.keys, flt, sort, limit, offset)
    out = []
    for r in rows:
        d = r.data
        out.append({"id": r.id, "version": r.version, **d, "household": r.household | {"id": r.household_id},
                    "overdue": workflow.is_overdue(d, today, metrics.FINISHED)})
    return out, total


def _common(page: Page) -> dict[str, Any]:
    cats = categories(page.store)
    return {"cats": cats, "cat_name": lambda code: category_name(cats, code, page.lang),
            "names": user_names(page.store), "lines": LINES, "levels": LEVELS, "urgencies": URGENCIES,
            "statuses": workflow.STATUSES, "today": local_today().isoformat(), "move_labels": MOVE_LABELS}


def _audit_listed(page: Page, rows: list[dict[str, Any]], where: str) -> None:
    shown = [r["id"] for r in rows if is_sensitive(r)]
    if shown:
        audit_sensitive(page, shown, where)


@get("/staff/matters", include_in_schema=False)
async def matter_list(request: Request) -> Response[Any]:
    return await run(request, _matter_list)


def _matter_list(page: Page) -> Response[Any]:
    f = _filters(page)
    n = page.number("page", 1, 1, MAX_PAGE, "页码必须是 1 到 100000 之间的整数。")
    rows, total = query_matters(page, f, PAGE_SIZE, (n - 1) * PAGE_SIZE)
    _audit_listed(page, rows, "list")
    assignees = users_by_role(page.store, ("proxy_agent", "grid_worker", "staff", "admin"))
    return page.render("staff/matters.html", rows=rows, total=total, f=f, n=n,
                       pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), assignees=assignees,
                       options=page.options(), qs=urlencode({k: v for k, v in f.items() if v}), **_common(page))


@get("/staff/intake", include_in_schema=False)
async def intake(request: Request) -> Response[Any]:
    return await run(request, _intake)


def _intake(page: Page) -> Response[Any]:
    f = {"status": "submitted", "sort": "raised_asc", "area": page.query.get("area") or ""}
    rows, total = query_matters(page, f, 200)
    _audit_listed(page, rows, "intake")
    return page.render("staff/intake.html", rows=rows, total=total, f=f, options=page.options(), **_common(page))


# -- the detail -----------------------------------------------------------------------------

def duplicate_suggestions(page: Page, m: StoredRecord) -> list[dict[str, Any]]:
    """Likely duplicates: same household or same resident, same category if it has one, raised within
    90 days of this one, not itself a duplicate or refused."""
    d = m.data
    raised = (d.get("raised_at") or m.created_at)[:10]
    try:
        day = date.fromisoformat(raised)
    except ValueError:
        day = local_today()
    lo, hi = (day - timedelta(days=90)).isoformat(), (day + timedelta(days=90)).isoformat()
    out = []
    for rid, o in page.store.possible_duplicates(m.id, d.get("household_id"), d.get("resident_id") or "", lo, hi,
                                                 page.keys):
        score = (2 if d.get("category") and o.get("category") == d.get("category") else 0) + \
                (1 if d.get("resident_id") and o.get("resident_id") == d.get("resident_id") else 0)
        out.append({"id": rid, **o, "score": score})
    out.sort(key=lambda o: (-o["score"], o.get("raised_at") or ""))
    return out[:8]


def assignable(page: Page, grid_id: str | None) -> list[dict[str, Any]]:
    """Who a matter of this grid can be dispatched to: proxy agents and grid workers whose areas meet
    the grid's path, and staff whose scope contains it."""
    path = set(page.tree.path(grid_id))
    out = []
    for u in users_by_role(page.store, ("proxy_agent", "grid_worker", "staff")):
        areas = u.get("areas") or []
        if any(a in path or (grid_id and grid_id in page.tree.subtree(a)) for a in areas):
            out.append(u)
    out.sort(key=lambda u: ({"proxy_agent": 0, "grid_worker": 1, "staff": 2}[u["role"]], u.get("username")))
    return out


def _detail_context(page: Page, matter_id: str) -> dict[str, Any]:
    m, h = matter_of(page, matter_id)
    ctx = _common(page)
    if is_sensitive(m.data):
        audit_sensitive(page, [m.id], "matter")
    events = events_of(page.store, m.id)
    record_ids = [m.id, *(e.id for e in events)]
    files = attachments_of(page.store, record_ids)
    shas = list(dict.fromkeys([*(m.data.get("photos") or []), *(s for e in events for s in
                                                              (e.data.get("attachments") or []))]))
    photos = [{"sha": s, "state": blob_state(page, s), **files.get(s, {})} for s in shas]
    residents = {r: page.store.get("residents", r) for r in
                 {m.data.get("resident_id"), *(e.data.get("for_resident_id") for e in events)} if r}
    summary = proxy.matter_summary(page.store, m.id) if m.data.get("handling_mode") == "proxy" or any(
        e.data.get("kind") in ("delegation", "custody", "step") for e in events) else None
    for dl in (summary or {}).get("delegations", []):
        if dl.get("authoriser_id") and dl["authoriser_id"] not in residents:
            residents[dl["authoriser_id"]] = page.store.get("residents", dl["authoriser_id"])
    materials = {mt.get("code"): mt for mt in ((ctx["cats"].get(m.data.get("category") or "") or {})
                                               .get("materials") or [])}
    status = m.data.get("status") or workflow.INITIAL
    moves = workflow.next_statuses(status, page.user.role, m.data.get("assignee_id") == page.user.id)
    cat = ctx["cats"].get(m.data.get("category") or "") or {}
    suggested_deadline = working_days_after(local_today(), int(cat.get("deadline_days") or 10)).isoformat()
    return ctx | {
        "m": m, "d": m.data, "h": h, "events": events, "photos": photos, "proxy": summary, "materials": materials,
        "residents": {k: v.data for k, v in residents.items() if v is not None},
        "conflicts": conflicts_of(page.store, record_ids), "moves": moves, "status": status,
        "grid_path": page.area_path(h.data.get("grid_id")),
        "duplicates": duplicate_suggestions(page, m) if status == "submitted" else [],
        "assignable": assignable(page, h.data.get("grid_id")), "cat": cat,
        "suggested_deadline": suggested_deadline,
        "overdue": workflow.is_overdue(m.data, local_today().isoformat(), metrics.FINISHED),
    }


@get("/staff/matters/{matter_id:str}", include_in_schema=False)
async def matter_detail(request: Request, matter_id: FromPath[str]) -> Response[Any]:
    return await run(request, _matter_detail, matter_id)


def _matter_detail(page: Page, matter_id: str) -> Response[Any]:
    return page.render("staff/matter.html", **_detail_context(page, matter_id))


@get("/staff/matters/{matter_id:str}/print", include_in_schema=False)
async def matter_print(request: Request, matter_id: FromPath[str]) -> Response[Any]:
    return await run(request, _matter_print, matter_id)


def _matter_print(page: Page, matter_id: str) -> Response[Any]:
    return page.render("staff/matter_print.html", **_detail_context(page, matter_id))


# -- actions --------------------------------------------------------------------------------

class Invalid(Exception):
    """A form the user must correct; the message is shown on the matter page."""


def _status_event(matter_id: str, frm: str, to: str, note: str = "", **extra: Any) -> dict[str, Any]:
    fields = {"matter_id": matter_id, "kind": "status", "from": frm, "to": to, **extra}
    if note:
        fields["note"] = note
    return {"collection": "matter_events", "id": uuid7(), "fields": fields}


def _event(matter_id: str, kind: str, note: str = "", **extra: Any) -> dict[str, Any]:
    fields = {"matter_id": matter_id, "kind": kind, **{k: v for k, v in extra.items() if v not in (None, "")}}
    if note:
        fields["note"] = note
    return {"collection": "matter_events", "id": uuid7(), "fields": fields}


def _choice(form: dict[str, Any], key: str, allowed: tuple[str, ...] | list[str], required: bool = False
            ) -> str | None:
    v = str(form.get(key) or "").strip()
    if not v:
        if required:
            raise Invalid(key)
        return None
    if v not in allowed:
        raise Invalid(key)
    return v


def _triage_fields(page: Page, form: dict[str, Any]) -> dict[str, Any]:
    cats = categories(page.store)
    fields: dict[str, Any] = {}
    if "category" in form:
        fields["category"] = _choice(form, "category", list(cats))
    if "line" in form:
        fields["line"] = _choice(form, "line", LINES)
    if "level" in form:
        fields["level"] = _choice(form, "level", LEVELS)
    if "urgency" in form:
        fields["urgency"] = _choice(form, "urgency", URGENCIES)
    if "deadline" in form:
        raw = str(form.get("deadline") or "").strip()
        if raw and parse_date(raw, None) is None:
            raise Invalid("deadline")
        fields["deadline"] = raw or None
    # What the clerk left empty comes from the category: its line, lowest level, default deadline.
    cat = cats.get(fields.get("category") or "") or {}
    if "line" in fields and not fields["line"] and cat.get("line"):
        fields["line"] = cat["line"]
    if "level" in fields and not fields["level"] and cat.get("lowest_level"):
        fields["level"] = cat["lowest_level"]
    if "deadline" in fields and not fields["deadline"] and cat:
        fields["deadline"] = working_days_after(local_today(), int(cat.get("deadline_days") or 10)).isoformat()
    return {k: v for k, v in fields.items() if v is not None}


def _plan(page: Page, m: StoredRecord, form: dict[str, Any], base: int, status: str
          ) -> tuple[list[dict[str, Any]], str]:
    """The mutations an action makes (against version ``base`` and ``status`` as the page showed
    them), and the message to show after it."""
    d = m.data
    action = str(form.get("action") or "")
    note = str(form.get("note") or "").strip()
    muts: list[dict[str, Any]] = []
    moved: list[str] = []

    def edit(fields: dict[str, Any]) -> None:
        changed = {k: v for k, v in fields.items() if d.get(k) != v}
        if changed:
            muts.append({"collection": "matters", "id": m.id, "base": base, "fields": changed})

    def move(to: str, text: str = "") -> None:
        frm = moved[-1] if moved else status
        if not workflow.may_transition(frm, to, page.user.role, d.get("assignee_id") == page.user.id):
            raise Invalid("status")
        muts.append(_status_event(m.id, frm, to, text))
        moved.append(to)

    if action == "triage":       # save category, line, level, deadline without deciding yet
        edit(_triage_fields(page, form))
        return muts, "saved"
    if action == "accept":       # 受理, and 派单 at once when an assignee is chosen
        edit(_triage_fields(page, form))
        move("accepted", note)
        assignee = str(form.get("assignee_id") or "")
        if assignee:
            _dispatch(page, m, base, assignee, form, muts, move, "")
        return muts, "accepted"
    if action == "not_accept":
        if not note:
            raise Invalid("note")
        move("not_accepted", note)
        return muts, "not_accepted"
    if action == "merge":
        target = str(form.get("duplicate_of") or "")
        other = page.store.get("matters", target)
        if not target or target == m.id or other is None or other.deleted:
            raise Invalid("duplicate_of")
        edit({"duplicate_of": target})
        move("merged_duplicate", note or page.t("与另一事项重复，已合并。"))
        return muts, "merged"
    if action == "dispatch":
        _dispatch(page, m, base, str(form.get("assignee_id") or ""), form, muts, move, note)
        return muts, "dispatched"
    if action == "reassign":     # another handler while the work goes on (改派): no status move
        household = page.store.get("households", d["household_id"])
        allowed = {u["id"] for u in assignable(page, household.data.get("grid_id") if household else None)}
        assignee = str(form.get("assignee_id") or "")
        if assignee not in allowed or assignee == d.get("assignee_id"):
            raise Invalid("assignee_id")
        edit({"assignee_id": assignee})
        muts.append(_event(m.id, "assign", note, for_user_id=assignee, data={"from_user_id": d.get("assignee_id")}))
        return muts, "dispatched"
    if action == "supervise":
        if not note:
            raise Invalid("note")
        edit({"supervised": True, "supervision_note": note})
        muts.append(_event(m.id, "supervise", note))
        return muts, "supervised"
    if action == "unsupervise":
        edit({"supervised": False})
        muts.append(_event(m.id, "supervise", note or page.t("解除督办"), data={"supervised": False}))
        return muts, "saved"
    if action == "escalate":
        level = _choice(form, "level", LEVELS, required=True)
        edit({"level": level})
        move("escalated", note)
        muts.append(_event(m.id, "escalate", note, data={"level": level}))
        return muts, "escalated"
    if action == "move":
        to = _choice(form, "to", workflow.STATUSES, required=True) or ""
        if to in ("not_accepted", "reopened", "closed") and not note:
            raise Invalid("note")
        move(to, note)
        return muts, "moved"
    if action == "note":
        if not note:
            raise Invalid("note")
        muts.append(_event(m.id, "note", note))
        return muts, "noted"
    raise Invalid("action")


def _dispatch(page: Page, m: StoredRecord, base: int, assignee: str, form: dict[str, Any], muts: list[dict[str, Any]],
              move: Any, note: str) -> None:
    """派单: to a person of the area (proxy agent, grid worker, staff), or to a responsible line (a
    department) alone, which then owns it in the responsibility list."""
    household = page.store.get("households", m.data["household_id"])
    allowed = {u["id"] for u in assignable(page, household.data.get("grid_id") if household else None)}
    line = _choice(form, "line", LINES)
    if assignee and assignee not in allowed or not assignee and not line:
        raise Invalid("assignee_id")
    fields: dict[str, Any] = {"assignee_id": assignee or None}
    deadline = str(form.get("deadline") or "").strip()
    if deadline:
        if parse_date(deadline, None) is None:
            raise Invalid("deadline")
        fields["deadline"] = deadline
    if line:
        fields["line"] = line
    changed = {k: v for k, v in fields.items() if m.data.get(k) != v}
    if changed:
        if muts and muts[0]["collection"] == "matters":
            muts[0]["fields"].update(changed)
        else:
            muts.insert(0, {"collection": "matters", "id": m.id, "base": base, "fields": changed})
    move("assigned", note)
    muts.append(_event(m.id, "assign", note, for_user_id=assignee or None, data={"line": line} if line else None))


@post("/staff/matters/{matter_id:str}/act", include_in_schema=False, status_code=200)
async def matter_act(request: Request, data: FormData, matter_id: FromPath[str]) -> Response[Any]:
    return await run_form(request, data, _matter_act, matter_id)


def _matter_act(page: Page, form: dict[str, Any], matter_id: str) -> Response[Any]:
    m, _ = matter_of(page, matter_id)
    # Edits and moves are made against what the page showed (its version and status): if a phone or
    # a colleague changed the matter meanwhile, the engine merges or records a conflict, as for a phone.
    try:
        shown = int(form.get("version") or 0)
    except (TypeError, ValueError):   # not a number, or the field sent twice (a list)
        shown = 0
    base = shown if 0 < shown <= m.version else m.version
    seen = str(form.get("status") or "")
    status = seen if seen in workflow.STATUSES else (m.data.get("status") or workflow.INITIAL)
    try:
        muts, msg = _plan(page, m, form, base, status)
    except Invalid as e:
        return page.back(f"/staff/matters/{m.id}", "invalid_" + str(e))
    if not muts:
        return page.back(f"/staff/matters/{m.id}", "unchanged")
    results = page.push(*muts)
    page.audit("staff." + str(form.get("action")), "matters", m.id,
               {"results": [r.status for r in results], "note": str(form.get("note") or "")[:200]})
    bad = [r for r in results if r.status == "rejected"]
    if bad:
        return page.back(f"/staff/matters/{m.id}", "rejected", why=bad[0].error.message if bad[0].error else "")
    if any(r.status == "conflict" for r in results):
        return page.back(f"/staff/matters/{m.id}", "conflict")
    nxt = str(form.get("next") or "")
    if nxt == "intake":
        return page.back("/staff/intake", msg)
    return page.back(f"/staff/matters/{m.id}", msg)


ROUTES: list[Any] = [matter_list, intake, matter_detail, matter_print, matter_act]
