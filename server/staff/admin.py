"""Administration (admin only): users, devices, the area tree, the matter-type catalogue; the audit log.

Users and devices are changed through ``sync.accounts`` (which audits each act); areas and
categories are synced collections, so they change through the engine like any record and reach
the phones by pull.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.params import FromPath

from sync import accounts
from sync.catalogue import category_id
from sync.engine import uuid7
from sync.errors import SyncError
from sync.schema import AREA_LEVELS, LEVELS, LINES, ROLES
from sync.store import iso

from .. import metrics
from ..imports import users as user_import
from . import labels
from .core import ADMIN_ROLES, PASSWORD_RULES_ZH, FormData, Page, Refused, parse_date, run, run_form, whole_number
from .records import categories, category_name, user_names
from .reports import XLSX, download


def _password_refused(page: Page, password: str, username: str) -> Response[Any] | None:
    reason = accounts.password_problem(password, username)
    if reason is None:
        return None
    return page.back("/staff/admin/users", "invalid_form", why=page.t(PASSWORD_RULES_ZH[reason]))


# sync.accounts refuses in English (its messages are the CLI's and the API's); the console says why
# in the page's language, by the message's opening words (the details name no code for each case).
ACCOUNT_ERRORS_ZH = (("username:", "用户名只能包含字母、数字和 . _ -，最多50个字符。"),
                     ("username ", "该用户名已被使用。"), ("role ", "请选择角色。"), ("no such area", "所选区域不存在。"),
                     ("no such user", "没有这个用户。"))


def _account_error(page: Page, e: SyncError) -> str:
    reason = (e.details or {}).get("reason") if isinstance(e.details, dict) else None
    if reason in PASSWORD_RULES_ZH:
        return page.t(PASSWORD_RULES_ZH[reason])
    for start, text in ACCOUNT_ERRORS_ZH:
        if e.message.startswith(start):
            return page.t(text)
    return labels.error_text(e.code, page.lang)


def _areas_of_form(page: Page, form: dict[str, Any]) -> list[str]:
    raw = form.get("areas") or []
    ids = [raw] if isinstance(raw, str) else list(raw)
    return [a for a in ids if a in page.allowed]


def is_global(page: Page) -> bool:
    """An admin without areas administers everything; an admin with areas only what lies in them."""
    return page.user.is_admin and not [a for a in page.user.areas if a in page.tree]


def in_scope(page: Page, user: dict[str, Any]) -> bool:
    """Whether an area admin may see and manage this user: all their areas lie within the admin's."""
    if is_global(page):
        return True
    areas = user.get("areas") or []
    return bool(areas) and all(a in page.allowed for a in areas) and user.get("role") != "admin"


def _scoped_users(page: Page) -> dict[str, dict[str, Any]]:
    """The users the admin may manage, by role, then username."""
    users = sorted(page.store.live_users(), key=lambda u: (u[1].get("role") is not None, u[1].get("role") or ""))
    return {rid: {"id": rid, **d} for rid, d in users if in_scope(page, d)}


def _user_in_scope(page: Page, user_id: str) -> dict[str, Any]:
    rec = page.store.get("users", user_id)
    if rec is None or not in_scope(page, rec.data):
        raise Refused(404)
    return rec.data


# -- users --------------------------------------------------------------------------------------

@get("/staff/admin/users", include_in_schema=False)
async def users_page(request: Request) -> Response[Any]:
    return await run(request, _users_page, roles=ADMIN_ROLES)


def _users_page(page: Page) -> Response[Any]:
    users = list(_scoped_users(page).values())
    devices: dict[str, int] = {}
    unsent: dict[str, int] = {}  # records the user's phones said they had not sent: revoking loses them
    for d in page.store.devices():
        if not d.get("revoked_at"):
            devices[d["user_id"]] = devices.get(d["user_id"], 0) + 1
            unsent[d["user_id"]] = unsent.get(d["user_id"], 0) + (d.get("outbox_depth") or 0)
    roles = ROLES if is_global(page) else tuple(r for r in ROLES if r != "admin")
    return page.render("staff/admin_users.html", users=users, roles=roles, devices=devices, unsent=unsent,
                       one_time=page.store.one_time_password_users(),
                       options=page.options(), min_password=accounts.MIN_PASSWORD,
                       max_password=accounts.MAX_PASSWORD)


@post("/staff/admin/users", include_in_schema=False, status_code=200)
async def user_create(request: Request, data: FormData) -> Response[Any]:
    return await run_form(request, data, _user_create, roles=ADMIN_ROLES)


def _user_create(page: Page, form: dict[str, Any]) -> Response[Any]:
    password = str(form.get("password") or "")
    refused = _password_refused(page, password, str(form.get("username") or "").strip())
    if refused is not None:
        return refused
    if not in_scope(page, {"role": form.get("role"), "areas": _areas_of_form(page, form)}):
        return page.back("/staff/admin/users", "invalid_form", why=page.t("只能在您管辖的区域内创建用户。"))
    try:
        uid = accounts.create_user(page.writer, str(form.get("username") or "").strip(), password,
                                   str(form.get("role") or ""), _areas_of_form(page, form),
                                   display_name=str(form.get("display_name") or "").strip() or None,
                                   phone=str(form.get("phone") or "").strip() or None, must_change=True)
    except SyncError as e:
        return page.back("/staff/admin/users", "invalid_form", why=_account_error(page, e))
    page.audit("staff.user.create", "users", uid)
    return page.back("/staff/admin/users", "created")


@post("/staff/admin/users/{user_id:str}", include_in_schema=False, status_code=200)
async def user_update(request: Request, data: FormData, user_id: FromPath[str]) -> Response[Any]:
    return await run_form(request, data, _user_update, user_id, roles=ADMIN_ROLES)


def _user_update(page: Page, form: dict[str, Any], user_id: str) -> Response[Any]:
    target = _user_in_scope(page, user_id)
    action = form.get("action")
    try:
        if action == "save":
            if not in_scope(page, {"role": form.get("role"), "areas": _areas_of_form(page, form)}):
                return page.back("/staff/admin/users", "invalid_form", why=page.t("只能在您管辖的区域内创建用户。"))
            accounts.update_user(page.writer, user_id, by=page.user.id, role=str(form.get("role") or ""),
                                 areas=_areas_of_form(page, form),
                                 display_name=str(form.get("display_name") or "").strip() or None)
        elif action == "disable":
            if user_id == page.user.id:
                return page.back("/staff/admin/users", "invalid_form", why=page.t("不能停用自己的账号。"))
            if form.get("confirm") != "yes":
                # The devices page's confirmation: every phone to be wiped, and what each has not sent.
                devices = accounts.active_devices(page.store, user_id)
                return page.render("staff/admin_user_disable.html", target={"id": user_id, **target},
                                   devices=devices, names=user_names(page.store),
                                   unsent=sum(d.get("outbox_depth") or 0 for d in devices))
            accounts.disable_user(page.writer, user_id, by=page.user.id)
            return page.back("/staff/admin/users", "disabled")
        elif action == "enable":
            accounts.update_user(page.writer, user_id, by=page.user.id, active=True)
        elif action == "password":
            password = str(form.get("password") or "")
            refused = _password_refused(page, password, str(target.get("username") or ""))
            if refused is not None:
                return refused
            revoke = form.get("revoke_devices") == "yes"
            # A password someone else chose is one-time: the user replaces it at their next sign-in.
            accounts.set_password(page.writer, user_id, password, by=page.user.id, revoke_devices=revoke,
                                  must_change=True)
            return page.back("/staff/admin/users", "password_revoked" if revoke else "password")
        else:
            return page.back("/staff/admin/users", "invalid_action")
    except SyncError as e:
        return page.back("/staff/admin/users", "invalid_form", why=_account_error(page, e))
    return page.back("/staff/admin/users", "saved")


# -- users from an .xlsx (issue 14, docs/onboarding.md §3) ----------------------------------------

def _import_scope(page: Page) -> user_import.Scope:
    return user_import.Scope(None if is_global(page) else set(page.allowed))


@get("/staff/admin/users/template.xlsx", include_in_schema=False)
async def users_template(request: Request) -> Response[Any]:
    return await run(request, _users_template, roles=ADMIN_ROLES)


def _users_template(page: Page) -> Response[Any]:
    data = user_import.template_xlsx(user_import.area_choices(page.store, _import_scope(page).allowed))
    return download(data, f"{page.t('用户导入模板')}.xlsx", XLSX)


@post("/staff/admin/users/import", include_in_schema=False, status_code=200)
async def users_import(request: Request) -> Response[Any]:
    # The upload is multipart, the confirmation carries the file on as a field: read either.
    form = await request.form()
    return await run_form(request, {k: form.get(k) for k in form.keys()}, _users_import, roles=ADMIN_ROLES)


def _users_import(page: Page, form: dict[str, Any]) -> Response[Any]:
    """A dry run first (the preview, carrying the file on to the apply button), then every row or none."""
    upload, carried = form.get("file"), form.get("content")
    content: bytes | None = None
    if isinstance(upload, UploadFile):
        content = upload.file.read(user_import.MAX_BYTES + 1)
    elif isinstance(carried, str) and carried:
        try:
            content = base64.b64decode(carried, validate=True)
        except ValueError:
            content = None
    if not content:
        return page.back("/staff/admin/users", "invalid_form", why=page.t("请选择要导入的 .xlsx 文件。"))
    filename = upload.filename if isinstance(upload, UploadFile) else str(form.get("filename") or "")
    scope = _import_scope(page)
    passwords: list[tuple[str, str, str]] = []
    if form.get("action") == "apply":
        applied = user_import.apply(page.writer, content, scope, by=page.user.id)
        plan, passwords = applied.plan, applied.passwords
        if plan.ok:
            page.audit("staff.user.import", "users", None, {"created": len(plan.creates),
                                                            "updated": len(plan.updates)})
    else:
        plan = user_import.plan(page.store, content, scope)
    sheet = ""
    if passwords:
        # The one offer of the passwords: in this answer only (no-store), never kept by the server.
        sheet = "data:" + XLSX + ";base64," + base64.b64encode(user_import.passwords_xlsx(passwords)).decode()
    return page.render("staff/admin_users_import.html", http_status=200 if plan.ok else 400, plan=plan,
                       applied=form.get("action") == "apply" and plan.ok, passwords_sheet=sheet,
                       new_count=len(passwords), filename=filename[:200],
                       content=base64.b64encode(content).decode() if plan.ok else "",
                       role_zh=user_import.ROLE_ZH, column_zh=user_import.COLUMN_ZH)


# -- devices ------------------------------------------------------------------------------------

@get("/staff/admin/devices", include_in_schema=False)
async def devices_page(request: Request) -> Response[Any]:
    return await run(request, _devices_page, roles=ADMIN_ROLES)


def _devices_page(page: Page) -> Response[Any]:
    users = _scoped_users(page)
    devices = sorted((d for d in page.store.devices() if d["user_id"] in users), key=lambda d: (bool(d.get("revoked_at")), d.get("last_seen_at") or ""),
                     reverse=False)
    return page.render("staff/admin_devices.html", devices=devices, names=user_names(page.store))


@post("/staff/admin/devices/{device_id:str}/revoke", include_in_schema=False, status_code=200)
async def device_revoke(request: Request, data: FormData, device_id: FromPath[str]) -> Response[Any]:
    return await run_form(request, data, _device_revoke, device_id, roles=ADMIN_ROLES)


def _device_revoke(page: Page, form: dict[str, Any], device_id: str) -> Response[Any]:
    device = page.store.device(device_id)
    if device is None:
        raise Refused(404)
    _user_in_scope(page, device["user_id"])
    if form.get("confirm") != "yes":
        return page.back("/staff/admin/devices", "invalid_form", why=page.t("请勾选确认。"))
    if not accounts.revoke_device(page.writer, device_id, by=page.user.id):
        return page.back("/staff/admin/devices", "unchanged")
    return page.back("/staff/admin/devices", "revoked")


# -- areas --------------------------------------------------------------------------------------

@get("/staff/admin/areas", include_in_schema=False)
async def areas_page(request: Request) -> Response[Any]:
    return await run(request, _areas_page, roles=ADMIN_ROLES)


def _areas_page(page: Page) -> Response[Any]:
    rows: list[dict[str, Any]] = []
    records = page.store.get_many("areas", list(page.allowed))

    def walk(aid: str, depth: int) -> None:
        count = page.store.live_count("households", "grid_id", aid)
        rec = records.get(aid)
        rows.append({"id": aid, "depth": depth, "name": page.area_name(aid), "level": page.tree.level.get(aid),
                     "mountain": page.tree.mountain.get(aid), "households": count,
                     "code": rec.data.get("code") if rec else None})
        for c in sorted(page.tree.children.get(aid, []), key=page.area_key):
            walk(c, depth + 1)

    for r in sorted(page.roots, key=page.area_key):
        walk(r, 0)
    return page.render("staff/admin_areas.html", rows=rows, levels=AREA_LEVELS)


@post("/staff/admin/areas", include_in_schema=False, status_code=200)
async def area_create(request: Request, data: FormData) -> Response[Any]:
    return await run_form(request, data, _area_create, roles=ADMIN_ROLES)


def _area_create(page: Page, form: dict[str, Any]) -> Response[Any]:
    parent = str(form.get("parent_id") or "")
    if parent not in page.allowed and not (is_global(page) and not parent):
        raise Refused(404)
    fields: dict[str, Any] = {"name": str(form.get("name") or "").strip(), "level": str(form.get("level") or ""),
                              "parent_id": parent or None,
                              "mountain": form.get("mountain") == "1"}
    result = page.push({"collection": "areas", "id": uuid7(), "fields": fields})[0]
    page.audit("staff.area.create", "areas", result.id, {"name": fields["name"], "result": result.status})
    if result.status == "rejected":
        return page.back("/staff/admin/areas", "rejected", why=page.why(result))
    return page.back("/staff/admin/areas", "created")


# -- imports: areas from the national code list, grids from an .xlsx (docs/onboarding.md §1, §2) ----

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _with_file(request: Request) -> dict[str, Any]:
    """The form (multipart, or any form a client sends: then without a file) with its upload read:
    ``file`` as bytes (none: b"") and ``filename``. Who sends it is checked after, by ``run_form``,
    on the same terms as every form: a form that cannot be read is just a form without a file."""
    try:
        raw = await request.form()
    except ClientException as e:
        if e.status_code == 413:     # larger than a request may be: said as such, not as a bad form
            raise
        raw = None
    form: dict[str, Any] = {}
    if raw is not None:
        for k, v in raw.items():
            if not isinstance(v, UploadFile):
                form.setdefault(k, v)
    upload = raw.get("file") if raw is not None else None
    form["file"] = await upload.read() if isinstance(upload, UploadFile) else b""
    form["filename"] = upload.filename if isinstance(upload, UploadFile) else ""
    return form


@post("/staff/admin/areas/import", include_in_schema=False, status_code=200)
async def areas_import(request: Request) -> Response[Any]:
    return await run_form(request, await _with_file(request), _import, "areas", roles=ADMIN_ROLES)


@post("/staff/admin/grids/import", include_in_schema=False, status_code=200)
async def grids_import(request: Request) -> Response[Any]:
    return await run_form(request, await _with_file(request), _import, "grids", roles=ADMIN_ROLES)


def _import(page: Page, form: dict[str, Any], kind: str) -> Response[Any]:
    """Check (``mode=check``) or apply an upload; the result page lists every problem by row.
    An area admin imports only within their areas (``allowed``): a row outside them is a problem."""
    from ..imports.areas import ImportRefused, import_areas
    from ..imports.areas import Outcome as AreaOutcome
    from ..imports.grids import import_grids
    from ..imports.report import problems_xlsx

    data: bytes = form["file"]
    if not data:
        return page.back("/staff/admin/areas", "invalid_form", why=page.t("请选择要上传的文件。"))
    dry_run = form.get("mode") != "apply"
    allowed = None if is_global(page) else page.allowed
    run_import = import_areas if kind == "areas" else import_grids
    try:
        out = run_import(page.writer, data, page.actor(), dry_run=dry_run, allowed=allowed)
    except ImportRefused as e:
        return page.back("/staff/admin/areas", "rejected", why=str(e))
    if form.get("mode") == "report" and out.problems:
        # the problems as a workbook to fix the file by (the same check, nothing written)
        name = f"{'区划' if kind == 'areas' else '网格'}导入问题.xlsx"
        return Response(problems_xlsx(out.problems), media_type=XLSX, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"})
    if out.applied:
        counts = ({"created": len(out.created), "updated": len(out.updated)} if isinstance(out, AreaOutcome)
                  else {"grids": len(out.grids_created), "patches": len(out.patches_created),
                        "users": len(out.users_updated)})
        page.audit(f"staff.{kind}.import", "areas", None, {"file": str(form.get("filename") or "")[:200], **counts})
    return page.render("staff/admin_import.html", kind=kind, out=out, dry_run=dry_run,
                       filename=str(form.get("filename") or ""))


@get("/staff/admin/grids/template.xlsx", include_in_schema=False)
async def grids_template(request: Request) -> Response[Any]:
    return await run(request, _grids_template, roles=ADMIN_ROLES)


def _grids_template(page: Page) -> Response[Any]:
    from ..imports.grids import template_xlsx

    return Response(template_xlsx(), media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote('网格导入模板.xlsx')}", "Cache-Control": "no-store"})


# -- catalogue ----------------------------------------------------------------------------------

@get("/staff/admin/catalogue", include_in_schema=False)
async def catalogue_page(request: Request) -> Response[Any]:
    return await run(request, _catalogue_page, roles=ADMIN_ROLES)


def _catalogue_page(page: Page) -> Response[Any]:
    cats = categories(page.store)
    versions = page.store.record_versions("categories")
    return page.render("staff/admin_catalogue.html", cats=cats, versions=versions, lines=LINES, levels=LEVELS,
                       editable=is_global(page),
                       edit=page.query.get("edit") or "", dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _materials(raw: str) -> list[dict[str, Any]] | None:
    """One material a line: ``名称`` or ``名称 | 原件`` (an original that must be returned)."""
    out = []
    for n, line in enumerate(raw.splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        name, _, flag = text.partition("|")
        out.append({"code": f"item{n}", "name_zh": name.strip()[:60], "name_en": name.strip()[:60],
                    "original": flag.strip() in ("原件", "original", "1")})
    return out or None


@post("/staff/admin/catalogue/{code:str}", include_in_schema=False, status_code=200)
async def catalogue_save(request: Request, data: FormData, code: FromPath[str]) -> Response[Any]:
    return await run_form(request, data, _catalogue_save, code, roles=ADMIN_ROLES)


def _catalogue_save(page: Page, form: dict[str, Any], code: str) -> Response[Any]:
    if not is_global(page):     # the catalogue is the whole county's: an area admin reads it only
        raise Refused(403)
    cats = categories(page.store)
    old = cats.get(code)
    if old is None:
        raise Refused(404)
    # Form values are whatever a client sends (a list for a repeated name, any text): ASCII digits
    # in range or a clear refusal, never int() on them.
    days = whole_number(str(form.get("deadline_days") or "0"), 0, 365)
    base = whole_number(str(form.get("version") or "1"), 1, 2 ** 53)
    if days is None or base is None:
        return page.back("/staff/admin/catalogue", "invalid_form", edit=code,
                         why=page.t("办理时限须为 0 到 365 之间的整数（工作日）。") if days is None else "")
    fields: dict[str, Any] = {
        "name_zh": str(form.get("name_zh") or "").strip(), "name_en": str(form.get("name_en") or "").strip(),
        "line": str(form.get("line") or "") or None, "lowest_level": str(form.get("lowest_level") or "") or None,
        "deadline_days": days, "sensitive": form.get("sensitive") == "1", "active": form.get("active") == "1",
    }
    if "materials" in form:
        mats = _materials(str(form.get("materials") or ""))
        old_mats = old.get("materials") or []
        # keep the shipped codes (and English names) of items whose Chinese name did not change
        by_name = {m.get("name_zh"): m for m in old_mats}
        fields["materials"] = [by_name.get(m["name_zh"], m) | {"original": m["original"]} for m in mats] if mats \
            else None
    changed = {k: v for k, v in fields.items() if old.get(k) != v}
    if not changed:
        return page.back("/staff/admin/catalogue", "unchanged")
    result = page.push({"collection": "categories", "id": category_id(code), "base": base, "fields": changed})[0]
    page.audit("staff.catalogue.update", "categories", category_id(code), {"code": code, "fields": sorted(changed)})
    if result.status == "rejected":
        return page.back("/staff/admin/catalogue", "rejected", why=page.why(result),
                         edit=code)
    return page.back("/staff/admin/catalogue", "saved")


# -- audit log ----------------------------------------------------------------------------------

@get("/staff/audit", include_in_schema=False)
async def audit_page(request: Request) -> Response[Any]:
    return await run(request, _audit_page, roles=ADMIN_ROLES)


AUDIT_PAGE_SIZE = 50

# Keys of the audit rows' details (who writes them: server/staff/*.py, sync/accounts.py, sync/proxy.py).
AUDIT_DETAIL_LABELS: dict[str, str] = {
    "via": "途径", "device_id": "设备", "count": "读取记录数", "ip": "IP地址", "name": "名称", "username": "用户名",
    "role": "角色", "revoke_devices": "同时注销设备", "resolution": "处理方式", "result": "结果", "results": "结果",
    "report": "报表", "format": "格式", "area": "区域", "month": "月份", "code": "分类", "fields": "修改的字段",
    "note": "说明", "display_name": "姓名", "areas": "工作区域", "phone": "电话", "active": "启用",
}
# Details that are ids already shown as the row's record, or evidence kept for investigators only.
AUDIT_DETAIL_HIDDEN = frozenset({"records", "household_id", "password_hash"})
PUSH_RESULTS = {"applied": "已生效", "merged": "已合并", "conflict": "冲突", "rejected": "被拒绝"}
REPORTS = {"lists": "三张清单", "monthly": "月报告", "problem": "问题清单", "measure": "落实清单", "owner": "责任清单"}
VIA_PAGES = {"matter": "事项页", "list": "事项列表", "intake": "待受理", "dossier": "住户档案", "report": "报表",
             "export": "导出"}


def _audit_value(page: Page, key: str, value: Any, cats: dict[str, dict[str, Any]]) -> str:
    """One detail of an audit row as staff read it (labels, names; never a code or an id)."""
    t = page.t
    sep = ", " if page.lang == "en" else "、"
    if key == "via" and isinstance(value, str):
        if value.startswith("staff:"):
            where = value.split(":", 1)[1]
            return t("管理后台") + (" · " + t(VIA_PAGES[where]) if where in VIA_PAGES else "")
        return t("手机同步")
    if key == "device_id" and isinstance(value, str):
        device = page.store.device(value)
        return str(device.get("name") or t("设备")) if device else t("管理后台")
    if key in ("result", "results"):
        items = value if isinstance(value, list) else [value]
        return sep.join(t(PUSH_RESULTS.get(str(v), "其他")) for v in items)
    if key == "resolution":
        return labels.label("resolution", value, page.lang)
    if key == "report":
        return t(REPORTS[value]) if value in REPORTS else t("报表")
    if key == "format":
        return {"xlsx": "Excel", "csv": "CSV", "html": t("网页")}.get(str(value), str(value))
    if key == "area" or key == "areas":
        items = value if isinstance(value, list) else [value]
        return sep.join(page.area_name(a) if isinstance(a, str) and a else "—" for a in items) or "—"
    if key == "code":
        return category_name(cats, value, page.lang) if isinstance(value, str) else "—"
    if key == "fields" and isinstance(value, list):
        return sep.join(labels.field_label("categories", str(f), page.lang) for f in value)
    return labels.value_text("users", key, value, page.lang)


def audit_rows(page: Page, entries: list[Any]) -> list[dict[str, Any]]:
    """Audit entries as the page shows them: action label, who, the record with a link, details as text."""
    names = user_names(page.store)
    cats = categories(page.store)
    out = []
    for e in entries:
        try:
            details = json.loads(e.details) if e.details else {}
        except ValueError:
            details = {}
        if not isinstance(details, dict):
            details = {}
        link, text = None, labels.label("collection", e.collection, page.lang) if e.collection else ""
        rid = e.record_id
        if rid and e.collection == "matters":
            link = f"/staff/matters/{rid}"
        elif rid and e.collection == "households":
            link = f"/staff/households/{rid}"
        elif rid and e.collection == "residents" and isinstance(details.get("household_id"), str):
            link = f"/staff/households/{details['household_id']}"
        elif rid and e.collection == "conflicts":
            link = f"/staff/conflicts/{rid}"
        elif rid and e.collection == "users":
            text += " · " + names.get(rid, "—")
            link = "/staff/admin/users"
        elif rid and e.collection == "areas":
            text += " · " + page.area_name(rid)
            link = "/staff/admin/areas"
        elif rid and e.collection == "categories":
            link = "/staff/admin/catalogue"
        elif e.collection == "devices":
            link = "/staff/admin/devices"
        shown = [(page.t(AUDIT_DETAIL_LABELS[k]) if k in AUDIT_DETAIL_LABELS else labels.field_label("users", k, page.lang),
                  _audit_value(page, k, v, cats)) for k, v in details.items() if k not in AUDIT_DETAIL_HIDDEN]
        out.append({"at": e.at, "who": names.get(e.user_id or "", "—") if e.user_id else page.t("系统"),
                    "action": e.action, "action_label": labels.label("audit", e.action, page.lang),
                    "record": text, "link": link, "details": shown})
    return out


def _audit_page(page: Page) -> Response[Any]:
    action = (page.query.get("action") or "").strip()
    actions = page.store.audit_actions()
    if action and action not in actions:
        raise Refused(400, "没有这种操作。")
    who = (page.query.get("user") or "").strip()
    raw_from, raw_to = page.query.get("from") or "", page.query.get("to") or ""
    day_from, day_to = parse_date(raw_from, None), parse_date(raw_to, None)
    if (raw_from and day_from is None) or (raw_to and day_to is None):
        raise Refused(400, "日期格式不正确，请按“年-月-日”填写（2000 至 2099 年）。")
    if day_from and day_to and day_from > day_to:
        raise Refused(400, "开始日期不能晚于结束日期。")
    number = page.number("page", 1, 1, 100000, "页码必须是 1 到 100000 之间的整数。")

    def utc(day: date) -> str:   # the start of a local day, as the audit log stamps times (UTC)
        return iso(datetime.combine(day, time(0), tzinfo=metrics.LOCAL_TZ))

    # an area admin sees what their own people did
    people = None if is_global(page) else [page.user.id, *_scoped_users(page)]
    entries = page.store.audit_entries(action=action, user_id=who, user_ids=people, limit=AUDIT_PAGE_SIZE + 1,
                                       offset=(number - 1) * AUDIT_PAGE_SIZE,
                                       at_from=utc(day_from) if day_from else "",
                                       at_before=utc(day_to + timedelta(days=1)) if day_to else "")
    more = len(entries) > AUDIT_PAGE_SIZE
    qs = {k: v for k, v in {"action": action, "user": who, "from": raw_from, "to": raw_to}.items() if v}
    choices = sorted(((a, labels.label("audit", a, page.lang)) for a in actions), key=lambda c: c[1])
    return page.render("staff/audit.html", rows=audit_rows(page, entries[:AUDIT_PAGE_SIZE]), action=action,
                       who=who, actions=choices, day_from=raw_from, day_to=raw_to, number=number,
                       prev_qs=urlencode({**qs, "page": number - 1}) if number > 1 else None,
                       next_qs=urlencode({**qs, "page": number + 1}) if more else None)


ROUTES: list[Any] = [users_page, users_template, users_import, user_create, user_update, devices_page, device_revoke,
                     areas_page, area_create, areas_import, grids_import, grids_template, catalogue_page,
                     catalogue_save, audit_page]
