"""Matters: the intake queue (统一集中受理), the list, the detail with its actions, the print view.

Every action is a batch of mutations pushed through the engine as the staff user's console
device (``Page.push``): field edits carry the version the page showed as ``base``, so an edit
that raced a phone's is merged by the same rules and, where both changed a field, recorded as
a conflict instead of silently overwriting it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from sync import proxy, workflow
from sync.engine import uuid7
from sync.schema import LEVELS, LINES, URGENCIES
from sync.storage import MATTER_SORTS, MatterFilter, MatterRow, MatterSort
from sync.store import StoredRecord

from .. import metrics
from .auth import safe_next
from .core import MESSAGES, FormData, Page, Refused, local_today, parse_date, run, run_form
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

# issue 14: what the dashboard's cards and charts open (server/staff/dashboard.py): the raise period
# (start, end) and resolution period (rstart, rend) as inclusive local dates, status groups "done"
# (resolved, closed) and "counted" (all but merged duplicates), deadline/on_time/mountain/delegated
# flags ("1"), feedback ("rated", "satisfied").
CARD_FILTERS = ("start", "end", "rstart", "rend", "deadline", "on_time", "mountain", "delegated", "feedback")
STATUS_GROUPS = {"open": OPEN_STATUSES, "done": metrics.DONE}
FILTER_KEYS = ("status", "category", "line", "area", "overdue", "due_soon", "supervised", "assignee", "channel", "q",
               "sort", "handling", *CARD_FILTERS)


def _filters(page: Page) -> dict[str, str]:
    q = page.query
    f = {k: (q.get(k) or "").strip() for k in FILTER_KEYS}
    for k in ("start", "end", "rstart", "rend"):
        if f[k] and parse_date(f[k], None) is None:
            raise Refused(400, "日期格式不正确，应为 2000-01-01 到 2099-12-31 之间的 年-月-日。")
    if f["feedback"] not in ("", "rated", "satisfied"):
        raise Refused(400, "评价条件只能是“已评价”或“满意”。")
    return f


def _next_day(value: str) -> str:
    day = parse_date(value, None)
    return (day + timedelta(days=1)).isoformat() if day else ""


def matter_filter(f: dict[str, Any], today: date) -> MatterFilter:
    """The store's filter for the console's filters ``f`` on ``today`` (a local date). The reports pass
    ``not_statuses``/``raised_from``/``raised_before`` themselves; the list's URL carries the cards' keys."""
    status = f.get("status") or ""
    day = today.isoformat()
    return MatterFilter(
        statuses=STATUS_GROUPS.get(status) or ((status,) if status and status != "counted" else ()),
        not_statuses=tuple(f.get("not_statuses") or ()) or (("merged_duplicate",) if status == "counted" else ()),
        raised_from=str(f.get("raised_from") or f.get("start") or ""),
        raised_before=str(f.get("raised_before") or _next_day(f.get("end") or "")),
        resolved_from=f.get("rstart") or "", resolved_before=_next_day(f.get("rend") or ""),
        with_deadline=f.get("deadline") == "1", on_time=f.get("on_time") == "1", delegated=f.get("delegated") == "1",
        feedback=f.get("feedback") or "",
        category=f.get("category") or "", line=f.get("line") or "", channel=f.get("channel") or "",
        handling_mode=f.get("handling") or "", assignee_id=f.get("assignee") or "",
        supervised=f.get("supervised") == "1",
        overdue_on=day if f.get("overdue") == "1" else "", ended=metrics.FINISHED,
        due_soon_on=day if f.get("due_soon") == "1" else "",
        due_soon_until=workflow.due_soon_until(today) if f.get("due_soon") == "1" else "",
        text=f.get("q") or "")


def _scope_of_filter(page: Page, f: dict[str, Any]) -> tuple[list[str], MatterSort]:
    area = f.get("area") or ""
    areas = page.tree.subtree(area) if area in page.allowed else sorted(page.allowed)
    if f.get("mountain") == "1":
        areas = [a for a in areas if page.tree.is_mountain(a)]
    sort: MatterSort = next((s for s in MATTER_SORTS if s == f.get("sort")), "raised")
    return areas, sort


def _row(r: MatterRow, today: str, until: str) -> dict[str, Any]:
    d = r.data
    return {"id": r.id, "version": r.version, **d, "household": r.household | {"id": r.household_id},
            "overdue": workflow.is_overdue(d, today, metrics.FINISHED),
            "overdue_days": workflow.overdue_days(d, today, metrics.FINISHED),
            "due_soon": workflow.is_due_soon(d, today, until, metrics.FINISHED)}


def query_matters(page: Page, f: dict[str, Any], limit: int | None = PAGE_SIZE, offset: int = 0
                  ) -> tuple[list[dict[str, Any]], int]:
    """The matters of the user's scope that pass the filters: (rows of one page, total count)."""
    today = local_today()
    areas, sort = _scope_of_filter(page, f)
    # in scope = the engine's predicate (a 信访 matter only for its handling chain), within the area chosen
    rows, total = page.store.matters_page(areas, page.keys, matter_filter(f, today), sort, limit, offset)
    day, until = today.isoformat(), workflow.due_soon_until(today)
    return [_row(r, day, until) for r in rows], total


def iter_matters(page: Page, f: dict[str, Any], batch: int = 500) -> Iterator[list[dict[str, Any]]]:
    """The same matters as ``query_matters``, all of them, a batch at a time (for the exports)."""
    today = local_today()
    areas, sort = _scope_of_filter(page, f)
    day, until = today.isoformat(), workflow.due_soon_until(today)
    for rows in page.store.matters_iter(areas, page.keys, matter_filter(f, today), sort, batch):
        yield [_row(r, day, until) for r in rows]


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


def page_number(page: Page) -> int:
    return page.number("page", 1, 1, MAX_PAGE, "页码必须是 1 到 100000 之间的整数。")


def _matter_list(page: Page) -> Response[Any]:
    f = _filters(page)
    n = page_number(page)
    rows, total = query_matters(page, f, PAGE_SIZE, (n - 1) * PAGE_SIZE)
    _audit_listed(page, rows, "list")
    assignees = users_by_role(page.store, ("proxy_agent", "grid_worker", "staff", "admin"))
    qs = urlencode({k: v for k, v in f.items() if v})
    return page.render("staff/matters.html", rows=rows, total=total, f=f, n=n, pages=pages_of(total), qs=qs,
                       assignees=assignees, options=page.options(), bulk_assignees=_bulk_assignees(page),
                       **_common(page))


def pages_of(total: int) -> int:
    return max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)


@get("/staff/intake", include_in_schema=False)
async def intake(request: Request) -> Response[Any]:
    return await run(request, _intake)


def _intake(page: Page) -> Response[Any]:
    f = {"status": "submitted", "sort": "raised_asc", "area": (page.query.get("area") or "").strip()}
    n = page_number(page)
    rows, total = query_matters(page, f, PAGE_SIZE, (n - 1) * PAGE_SIZE)
    _audit_listed(page, rows, "intake")
    return page.render("staff/intake.html", rows=rows, total=total, f=f, n=n, pages=pages_of(total),
                       qs=urlencode({"area": f["area"]} if f["area"] else {}), options=page.options(),
                       bulk_assignees=_bulk_assignees(page), **_common(page))


def _bulk_assignees(page: Page) -> list[dict[str, Any]]:
    """Whom the bulk 派单 form offers: the people of the user's scope (each matter then checks its own grid)."""
    out = []
    for u in users_by_role(page.store, ("proxy_agent", "grid_worker", "staff")):
        if any(a in page.allowed for a in (u.get("areas") or [])):
            out.append(u)
    out.sort(key=lambda u: ({"proxy_agent": 0, "grid_worker": 1, "staff": 2}[u["role"]], u.get("username")))
    return out


# -- the detail -----------------------------------------------------------------------------

DUPLICATE_WINDOW_DAYS = 60   # raised within this many days of each other
SIMILAR_TITLE = 1 / 3        # share of the shorter title's character pairs found in the other


def _title_pairs(title: Any) -> set[str]:
    text = "".join(ch for ch in str(title or "").lower() if ch.isalnum())
    return {text[i:i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def similar_titles(a: Any, b: Any) -> bool:
    """Whether two titles speak of the same thing (路灯不亮 / 门口路灯坏了): at least a third of the
    shorter title's pairs of characters appear in the other (代办社保卡换领 / 代办医保缴费 share only 代办)."""
    pa, pb = _title_pairs(a), _title_pairs(b)
    return bool(pa and pb) and len(pa & pb) / min(len(pa), len(pb)) >= SIMILAR_TITLE


def duplicate_suggestions(page: Page, m: StoredRecord) -> list[dict[str, Any]]:
    """Likely duplicates: the same household or the same resident, AND the same category or a similar
    title, raised within ``DUPLICATE_WINDOW_DAYS`` days of this one, not itself a duplicate or refused.
    Open matters first (the one to merge into is usually still being handled), then the closest in time.

    Same household alone is no evidence: a family raises unrelated things (a pension question, a
    leaking roof); offering those to merge was noise."""
    d = m.data
    raised = (d.get("raised_at") or m.created_at)[:10]
    try:
        day = date.fromisoformat(raised)
    except ValueError:
        day = local_today()
    window = timedelta(days=DUPLICATE_WINDOW_DAYS)
    lo, hi = (day - window).isoformat(), (day + window).isoformat()
    out = []
    for rid, o in page.store.possible_duplicates(m.id, d.get("household_id"), d.get("resident_id") or "", lo, hi,
                                                 page.keys):
        same_category = bool(d.get("category")) and o.get("category") == d.get("category")
        if not (same_category or similar_titles(d.get("title"), o.get("title"))):
            continue
        try:
            apart = abs((date.fromisoformat(str(o.get("raised_at") or "")[:10]) - day).days)
        except ValueError:
            apart = DUPLICATE_WINDOW_DAYS
        out.append({"id": rid, **o, "apart": apart})
    out.sort(key=lambda o: (o.get("status") in metrics.FINISHED, o["apart"], o.get("raised_at") or ""))
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
    return page.render("staff/matter.html", back=safe_back(page.query.get("next")), **_detail_context(page, matter_id))


LIST_PATHS = ("/staff/matters", "/staff/intake")


def safe_back(value: Any) -> str:
    """The list position a matter page was opened from (``?next=``), to return to after an action:
    the matters list or the intake queue with its filters and page, rebuilt from the known keys
    only (so never another site, another page or a stray parameter); "" for anything else."""
    if not isinstance(value, str) or len(value) > 2000 or safe_next(value) != value:
        return ""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment or parts.path not in LIST_PATHS:
        return ""
    q = [(k, v) for k, v in parse_qsl(parts.query) if k in (*FILTER_KEYS, "page") and v]
    return parts.path + ("?" + urlencode(q) if q else "")


def _to_list(back: str, msg: str, **params: str) -> Response[Any]:
    """Back to a list position (``safe_back``) with a message."""
    q = urlencode({"msg": msg, **{k: v for k, v in params.items() if v}})
    return Redirect(back + ("&" if "?" in back else "?") + q, status_code=303)


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
    nxt = form.get("next")
    back = safe_back(nxt)
    here = f"/staff/matters/{m.id}"
    try:
        muts, msg = _plan(page, m, form, base, status)
    except Invalid as e:
        return page.back(here, "invalid_" + str(e), next=back)
    if not muts:
        return page.back(here, "unchanged", next=back)
    results = page.push(*muts)
    page.audit("staff." + str(form.get("action")), "matters", m.id,
               {"results": [r.status for r in results], "note": str(form.get("note") or "")[:200]})
    bad = [r for r in results if r.status == "rejected"]
    if bad:
        return page.back(here, "rejected", why=page.why(bad[0]), next=back)
    if any(r.status == "conflict" for r in results):
        return page.back(here, "conflict", next=back)
    if nxt == "intake":
        return page.back("/staff/intake", msg)
    if back:   # opened from a list: back to the same filters and page
        return _to_list(back, msg)
    return page.back(here, msg)


# -- bulk 派单 and 督办 on a selection ----------------------------------------------------------

BULK_ACTIONS = {"dispatch": "批量派单", "supervise": "批量督办"}
BULK_MAX = 200


@post("/staff/matters/bulk", include_in_schema=False, status_code=200)
async def matter_bulk(request: Request, data: FormData) -> Response[Any]:
    return await run_form(request, data, _matter_bulk)


def _ids(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    return list(dict.fromkeys(str(x) for x in items if isinstance(x, str) and x))


def _matter_bulk(page: Page, form: dict[str, Any]) -> Response[Any]:
    """派单 or 督办 on each selected matter, each as its own action through the engine (the same plan
    as the matter page's, against the version the server holds): each one's outcome is shown, and
    one refused (out of scope, 信访 outside the chain, a status that does not allow it, an assignee
    outside its grid) leaves the others done."""
    action = str(form.get("action") or "")
    ids = _ids(form.get("ids"))
    back = safe_back(form.get("next")) or "/staff/matters"
    note = str(form.get("note") or "").strip()
    error = ""
    if action not in BULK_ACTIONS:
        error = "请选择批量操作。"
    elif not ids:
        error = "请先勾选事项。"
    elif len(ids) > BULK_MAX:
        error = "一次最多批量处理 200 条事项。"
    elif action == "supervise" and not note:
        error = "督办须填写督办意见。"
    elif action == "dispatch" and not form.get("assignee_id") and not form.get("line"):
        error = "请选择承办人或归口。"
    elif form.get("deadline") and parse_date(str(form.get("deadline")), None) is None:
        error = "日期格式不正确。"
    if error:
        return page.render("staff/matters_bulk.html", http_status=400, error=page.t(error), results=[], back=back,
                           action=action, actions=BULK_ACTIONS)
    results = [_bulk_one(page, action, mid, form, note) for mid in ids]
    shown = [r["id"] for r in results if r.get("sensitive")]
    if shown:
        audit_sensitive(page, shown, "bulk")
    return page.render("staff/matters_bulk.html", error="", results=results, back=back, action=action,
                       actions=BULK_ACTIONS, done=sum(r["ok"] for r in results))


def _bulk_one(page: Page, action: str, mid: str, form: dict[str, Any], note: str) -> dict[str, Any]:
    try:
        m, _ = matter_of(page, mid)
    except Refused:
        return {"id": mid, "ok": False, "title": "", "number": "", "why": page.t("没有找到该事项，或不在您的管辖范围内。")}
    d = m.data
    out = {"id": m.id, "ok": False, "title": d.get("title") or "", "number": d.get("number") or "",
           "sensitive": is_sensitive(d)}
    status = d.get("status") or workflow.INITIAL
    one: dict[str, Any] = {"note": note, "assignee_id": str(form.get("assignee_id") or ""),
                           "line": str(form.get("line") or "")}
    if action == "supervise":
        one["action"] = "supervise"
    elif status == workflow.INITIAL:   # in the intake queue: 受理 and 派单 at once, category defaults filling the rest
        one |= {"action": "accept", "deadline": str(form.get("deadline") or "")}
    else:
        one["action"] = "dispatch"
        if form.get("deadline"):
            one["deadline"] = str(form.get("deadline"))
        if not one["line"]:
            one.pop("line")
    try:
        muts, _ = _plan(page, m, one, m.version, status)
    except Invalid as e:
        out["why"] = page.t(MESSAGES.get("invalid_" + str(e), "输入有误，请检查后重试。"))
        return out
    if not muts:
        out["why"] = page.t("没有需要保存的修改。")
        return out
    results = page.push(*muts)
    page.audit("staff." + one["action"], "matters", m.id,
               {"results": [r.status for r in results], "note": note[:200], "bulk": True})
    bad = [r for r in results if r.status == "rejected"]
    if bad:
        out["why"] = page.why(bad[0])
    elif any(r.status == "conflict" for r in results):
        out["why"] = page.t("与他人的修改冲突，已记入冲突列表，请处理。")
    else:
        out["ok"] = True
    return out


ROUTES: list[Any] = [matter_list, intake, matter_bulk, matter_detail, matter_print, matter_act]
