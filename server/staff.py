"""The staff console (issue 6), first slice: sign-in, sign-out and the dashboard (一屏观全域).

Pages are rendered on the server with Jinja2 (autoescape on); no script, no inline style, so the
CSP of ``security.py`` holds. Sessions are a signed cookie ``gb_staff`` = ``user_id.expiry.sig``
(HMAC-SHA256 with the database's ``secret``); the CSRF token of a session is an HMAC of the
cookie, and before sign-in an HMAC of a random ``gb_staff_pre`` cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
import anyio
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from sync import accounts
from sync.engine import area_tree
from sync.errors import SyncError
from sync.store import SQLiteStore

from . import metrics

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "gb_staff"
PRE_COOKIE = "gb_staff_pre"
STAFF_ROLES = ("staff", "admin")
FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

_env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                   autoescape=select_autoescape(default=True, default_for_string=True))
_env.globals["fmt_rate"] = metrics.fmt_rate


def render(name: str, status: int = 200, cookies: list[Cookie] | None = None, **ctx: Any) -> Response[str]:
    html = _env.get_template(name).render(**ctx)
    return Response(html, status_code=status, media_type="text/html; charset=utf-8", cookies=cookies or [],
                    headers={"Cache-Control": "no-store"})


# -- sessions and CSRF ---------------------------------------------------------------------------

def _secret(request: Request) -> bytes:
    store: SQLiteStore = request.app.state["stores"].reader()
    return (store.get_meta("secret") or "").encode()


def _sign(request: Request, msg: str) -> str:
    return hmac.new(_secret(request), msg.encode(), hashlib.sha256).hexdigest()


def make_session(request: Request, user_id: str, hours: int) -> str:
    body = f"{user_id}.{int(time.time()) + hours * 3600}"
    return f"{body}.{_sign(request, 'session:' + body)}"


def read_session(request: Request) -> str | None:
    """The user id of a valid, unexpired session cookie, else None."""
    value = request.cookies.get(SESSION_COOKIE) or ""
    parts = value.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], _sign(request, "session:" + body)):
        return None
    if int(parts[1]) < time.time():
        return None
    return parts[0]


def csrf_token(request: Request, basis: str) -> str:
    return _sign(request, "csrf:" + basis)


def csrf_ok(request: Request, basis: str, token: Any) -> bool:
    return bool(basis) and isinstance(token, str) and hmac.compare_digest(token, csrf_token(request, basis))


def forbidden() -> Response[str]:
    return render("staff/forbidden.html", status=403)


def _cookie(request: Request, key: str, value: str, max_age: int | None) -> Cookie:
    settings = request.app.state["settings"]
    return Cookie(key=key, value=value, path="/staff", httponly=True, samesite="lax",
                  secure=bool(settings.secure_cookies), max_age=max_age)


@dataclass
class StaffUser:
    id: str
    username: str
    display_name: str
    role: str
    areas: list[str]


def current_user(request: Request) -> StaffUser | None:
    uid = read_session(request)
    if uid is None:
        return None
    store: SQLiteStore = request.app.state["stores"].reader()
    rec = store.get("users", uid)
    if rec is None or rec.deleted or rec.data.get("active") is False or rec.data.get("role") not in STAFF_ROLES:
        return None
    d = rec.data
    return StaffUser(rec.id, d.get("username", ""), d.get("display_name") or d.get("username", ""), d["role"],
                     list(d.get("areas") or []))


# -- sign-in -------------------------------------------------------------------------------------

def _login_page(request: Request, error: str = "", username: str = "", status: int = 200) -> Response[str]:
    pre = request.cookies.get(PRE_COOKIE) or ""
    cookies = []
    if len(pre) < 32:
        pre = secrets.token_hex(16)
        cookies.append(_cookie(request, PRE_COOKIE, pre, None))
    return render("staff/login.html", status=status, cookies=cookies, error=error, username=username,
                  csrf=csrf_token(request, "pre:" + pre))


@get("/staff/login", include_in_schema=False)
async def login_form(request: Request) -> Response[Any]:
    return await anyio.to_thread.run_sync(_login_form, request)


def _login_form(request: Request) -> Response[Any]:
    return _login_page(request)


@post("/staff/login", include_in_schema=False, status_code=200)
async def login_submit(request: Request, data: FormData) -> Response[Any]:
    return await anyio.to_thread.run_sync(_login_submit, request, data)


def _login_submit(request: Request, data: FormData) -> Response[Any]:
    pre = request.cookies.get(PRE_COOKIE) or ""
    if not csrf_ok(request, "pre:" + pre if pre else "", data.get("csrf")):
        return forbidden()
    username = str(data.get("username") or "").strip()
    password = str(data.get("password") or "")
    limiter = request.app.state["limiter"]
    ip = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(username, ip)
    if wait:
        return _login_page(request, f"登录失败次数过多，请 {wait} 秒后再试。Too many failed sign-ins; "
                                    f"try again in {wait} seconds.", username, status=429)
    store: SQLiteStore = request.app.state["stores"].reader()
    try:
        user = accounts.check_password(store, username, password)
    except SyncError as e:
        if e.code != "invalid_credentials":
            raise
        limiter.failed(username, ip)
        return _login_page(request, "用户名或密码错误。Wrong username or password.", username, status=401)
    limiter.succeeded(username)
    if user.data.get("role") not in STAFF_ROLES:
        return _login_page(request, "管理后台仅供镇、县工作人员使用。网格员和代办员请使用手机应用：/ 。"
                                    "The staff console is for town and county staff; grid workers and proxy "
                                    "agents use the app at /.", username, status=403)
    settings = request.app.state["settings"]
    hours = int(settings.session_hours)
    resp = Redirect("/staff/", status_code=303)
    resp.set_cookie(_cookie(request, SESSION_COOKIE, make_session(request, user.id, hours), hours * 3600))
    return resp


@post("/staff/logout", include_in_schema=False, status_code=200)
async def logout(request: Request, data: FormData) -> Response[Any]:
    return await anyio.to_thread.run_sync(_logout, request, data)


def _logout(request: Request, data: FormData) -> Response[Any]:
    session = request.cookies.get(SESSION_COOKIE) or ""
    if read_session(request) is None or not csrf_ok(request, session, data.get("csrf")):
        return forbidden()
    resp = Redirect("/staff/login", status_code=303)
    resp.set_cookie(_cookie(request, SESSION_COOKIE, "", 0))
    return resp


# -- dashboard -----------------------------------------------------------------------------------

def _parse_date(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


def _area_names(store: SQLiteStore, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    q = ",".join("?" * len(ids))
    return {aid: name for aid, name in store.conn.execute(
        f"SELECT id, json_extract(data, '$.name') FROM areas WHERE id IN ({q})", ids)}


def trend_svg(trend: list[dict[str, Any]], width: int = 640, height: int = 180) -> dict[str, Any]:
    """Geometry of the weekly chart: two polylines (collected, resolved), axis ticks."""
    pad_l, pad_b, pad_t = 32, 24, 10
    n = len(trend)
    top = max([1, *(w["collected"] for w in trend), *(w["resolved"] for w in trend)])
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t

    def xy(i: int, v: int) -> tuple[float, float]:
        x = pad_l + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)
        return round(x, 1), round(pad_t + inner_h - inner_h * v / top, 1)

    def line(key: str) -> str:
        return " ".join(f"{x},{y}" for x, y in (xy(i, w[key]) for i, w in enumerate(trend)))

    step = max(1, n // 8)
    labels = [{"x": xy(i, 0)[0], "text": w["week"][-3:]} for i, w in enumerate(trend) if i % step == 0]
    return {"width": width, "height": height, "collected": line("collected"), "resolved": line("resolved"),
            "labels": labels, "top": top, "base_y": pad_t + inner_h, "top_y": pad_t, "left": pad_l,
            "right": width - 8, "label_y": height - 6}


@get("/staff/", include_in_schema=False)
async def dashboard(request: Request) -> Response[Any]:
    return await anyio.to_thread.run_sync(_dashboard, request)


def _dashboard(request: Request) -> Response[Any]:
    user = current_user(request)
    if user is None:
        return Redirect("/staff/login", status_code=303)
    store: SQLiteStore = request.app.state["stores"].reader()
    tree = area_tree(store)
    if user.role == "admin":
        allowed_roots = tree.roots()
    else:
        allowed_roots = [a for a in user.areas if a in tree]
    allowed: set[str] = set()
    for a in allowed_roots:
        allowed.update(tree.subtree(a))
    options: list[str] = []
    for a in allowed_roots:
        for o in ([a] if user.role == "admin" else [a, *tree.children.get(a, [])]):
            if o not in options:
                options.append(o)
    names = _area_names(store, options)
    options.sort(key=lambda a: (len(tree.path(a)), names.get(a) or ""))
    q = request.query_params
    area_id = q.get("area") or (options[0] if options else "")
    if area_id not in allowed:
        area_id = options[0] if options else ""
    today = datetime.now(metrics.LOCAL_TZ).date()
    start = _parse_date(q.get("start"), date(today.year, 1, 1))
    end = _parse_date(q.get("end"), today)
    if end < start:
        start, end = end, start
    figures = metrics.dashboard(store, area_id, start, end + timedelta(days=1), today) if area_id else None
    if area_id and area_id not in names:
        names.update(_area_names(store, [area_id]))
    session = request.cookies.get(SESSION_COOKIE) or ""
    return render("staff/dashboard.html", user=user, options=options, names=names, area_id=area_id,
                  start=start.isoformat(), end=end.isoformat(), today=today.isoformat(), f=figures,
                  chart=trend_svg(figures["trend"]) if figures else None, csrf=csrf_token(request, session))


ROUTES: list[Any] = [
    login_form, login_submit, logout, dashboard,
    create_static_files_router(path="/staff/static", directories=[HERE / "static"], name="staff-static",
                               include_in_schema=False),
]
