"""Sign-in, sign-out and the language switch of the staff console."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

import anyio
from litestar import Request, Response, get, post
from litestar.response import Redirect

from sync import accounts
from sync.errors import SyncError
from sync.storage import Store

from .core import (LANG_COOKIE, PASSWORD_RULES_ZH, PRE_COOKIE, SESSION_COOKIE, STAFF_ROLES, FormData, cookie, csrf_ok, csrf_token,
                   end_sessions, forbidden, lang_of, make_session, read_session, render, whole_number)
from .i18n import translate


def safe_next(value: Any) -> str:
    """A redirect target inside the console only (no open redirect)."""
    if isinstance(value, str) and value.startswith("/staff/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/staff/"


def _login_page(request: Request, error: str = "", username: str = "", status: int = 200) -> Response[str]:
    pre = request.cookies.get(PRE_COOKIE) or ""
    cookies = []
    if len(pre) < 32:
        pre = secrets.token_hex(16)
        cookies.append(cookie(request, PRE_COOKIE, pre, None))
    return render("staff/login.html", http_status=status, cookies=cookies, error=error, username=username,
                  csrf=csrf_token(request, "pre:" + pre), lang=lang_of(request),
                  next=safe_next(request.query_params.get("next")), request_path="/staff/login")


@get("/staff/login", include_in_schema=False)
async def login_form(request: Request) -> Response[Any]:
    return await anyio.to_thread.run_sync(_login_page, request)


@post("/staff/login", include_in_schema=False, status_code=200)
async def login_submit(request: Request, data: FormData) -> Response[Any]:
    return await anyio.to_thread.run_sync(_login_submit, request, data)


def _login_submit(request: Request, data: FormData) -> Response[Any]:
    lang = lang_of(request)
    pre = request.cookies.get(PRE_COOKIE) or ""
    if not csrf_ok(request, "pre:" + pre if pre else "", data.get("csrf")):
        return forbidden(lang, 403, translate("表单已失效（CSRF 校验失败），请返回刷新后重试。", lang))
    username = str(data.get("username") or "").strip()
    password = str(data.get("password") or "")
    limiter = request.app.state["limiter"]
    ip = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(username, ip)
    if wait:
        return _login_page(request, translate("登录失败次数过多，请稍后再试。", lang) + f" ({wait} s)",
                           username, status=429)
    store: Store = request.app.state["stores"].reader()
    try:
        user = accounts.check_password(store, username, password)
    except SyncError as e:
        if e.code != "invalid_credentials":
            raise
        limiter.failed(username, ip)
        return _login_page(request, translate("用户名或密码错误。", lang), username, status=401)
    limiter.succeeded(username, ip)
    if user.data.get("role") not in STAFF_ROLES:
        return _login_page(request, translate("管理后台仅供镇、县工作人员使用。网格员和代办员请使用手机应用：/ 。", lang),
                           username, status=403)
    if store.password_must_change(user.id):
        # A one-time password (an import's initial one, an admin's reset) opens no session: only
        # the form that replaces it, valid for a few minutes and for this password alone.
        return _first_password_page(request, user.id, username, safe_next(data.get("next")))
    return _signed_in(request, user.id, ip, data.get("next"))


def _signed_in(request: Request, user_id: str, ip: str, next_page: Any) -> Response[Any]:
    settings = request.app.state["settings"]
    hours = int(settings.session_hours)
    with request.app.state["stores"].writer.transaction():
        request.app.state["stores"].writer.audit(user_id, "staff.login", "users", user_id, {"ip": ip})
    resp = Redirect(safe_next(next_page), status_code=303)
    resp.set_cookie(cookie(request, SESSION_COOKIE, make_session(request, user_id, hours), hours * 3600))
    return resp


# How long the form that replaces a one-time password stays valid after the password was given.
FIRST_PASSWORD_SECONDS = 15 * 60


def _first_password_grant(request: Request, user_id: str, expiry: int) -> str:
    """A signature that this browser gave the user's current one-time password (bound to its hash,
    so it is void once the password changes) and may replace it until ``expiry``."""
    stored = request.app.state["stores"].reader().password_hash(user_id) or ""
    return csrf_token(request, f"first-password:{user_id}.{expiry}.{stored}")


def _first_password_page(request: Request, user_id: str, username: str, next_page: str, error: str = "",
                         expiry: int | None = None, status: int = 200) -> Response[str]:
    expiry = expiry or int(time.time()) + FIRST_PASSWORD_SECONDS
    pre = request.cookies.get(PRE_COOKIE) or ""
    return render("staff/login_password.html", http_status=status, error=error, username=username,
                  user_id=user_id, expiry=expiry, grant=_first_password_grant(request, user_id, expiry),
                  csrf=csrf_token(request, "pre:" + pre), lang=lang_of(request), next=next_page,
                  min_password=accounts.MIN_PASSWORD, max_password=accounts.MAX_PASSWORD,
                  request_path="/staff/login")


@post("/staff/login/password", include_in_schema=False, status_code=200)
async def first_password(request: Request, data: FormData) -> Response[Any]:
    return await anyio.to_thread.run_sync(_first_password, request, data)


def _first_password(request: Request, data: FormData) -> Response[Any]:
    """The new password that replaces a one-time one, then the session."""
    lang = lang_of(request)
    pre = request.cookies.get(PRE_COOKIE) or ""
    if not csrf_ok(request, "pre:" + pre if pre else "", data.get("csrf")):
        return forbidden(lang, 403, translate("表单已失效（CSRF 校验失败），请返回刷新后重试。", lang))
    user_id, grant = str(data.get("user_id") or ""), data.get("grant")
    expiry = whole_number(data.get("expiry"), 0, 10 ** 12)
    store: Store = request.app.state["stores"].reader()
    user = store.get("users", user_id) if user_id else None
    if (user is None or expiry is None or expiry < time.time() or not store.password_must_change(user_id)
            or not csrf_ok(request, f"first-password:{user_id}.{expiry}.{store.password_hash(user_id) or ''}", grant)
            or user.deleted or user.data.get("active") is False or user.data.get("role") not in STAFF_ROLES):
        return _login_page(request, translate("设置新密码的时限已过，请重新用初始密码登录。", lang), status=403)
    username = str(user.data.get("username") or "")
    new, again = str(data.get("new_password") or ""), str(data.get("new_password2") or "")
    next_page = safe_next(data.get("next"))

    def refuse(message: str) -> Response[str]:
        return _first_password_page(request, user_id, username, next_page, translate(message, lang), expiry, 400)

    if new != again:
        return refuse("两次输入的新密码不一致。")
    reason = accounts.password_problem(new, username)
    if reason is not None:
        return refuse(PASSWORD_RULES_ZH[reason])
    stored = store.password_hash(user_id) or ""
    if accounts.verify_password(new, stored):
        return refuse(PASSWORD_RULES_ZH["reused"])
    try:
        accounts.replace_one_time_password(request.app.state["stores"].writer, user, stored, "", new)
    except SyncError as e:
        if e.code != "invalid_credentials":
            raise
        return _login_page(request, translate("设置新密码的时限已过，请重新用初始密码登录。", lang), status=403)
    ip = request.client.host if request.client else "unknown"
    return _signed_in(request, user_id, ip, next_page)


@post("/staff/logout", include_in_schema=False, status_code=200)
async def logout(request: Request, data: FormData) -> Response[Any]:
    return await anyio.to_thread.run_sync(_logout, request, data)


def _logout(request: Request, data: FormData) -> Response[Any]:
    session = request.cookies.get(SESSION_COOKIE) or ""
    if read_session(request) is None or not csrf_ok(request, session, data.get("csrf")):
        return forbidden(lang_of(request))
    uid = read_session(request)
    if uid:
        end_sessions(request, uid)
    resp = Redirect("/staff/login", status_code=303)
    resp.set_cookie(cookie(request, SESSION_COOKIE, "", 0))
    return resp


@get("/staff/lang", include_in_schema=False)
async def switch_language(request: Request) -> Response[Any]:
    """中文 / English: a cookie, then back to the page the user was on."""
    to = "en" if request.query_params.get("to") == "en" else "zh"
    resp = Redirect(safe_next(request.query_params.get("next")), status_code=303)
    resp.set_cookie(cookie(request, LANG_COOKIE, to, 365 * 86400))
    return resp


def lang_link(path: str, to: str) -> str:
    return "/staff/lang?" + urlencode({"to": to, "next": path})
