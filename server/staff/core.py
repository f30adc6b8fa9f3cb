"""What every staff page shares: sessions, CSRF, the page runner, scope, i18n and the staff push.

Pages are rendered on the server with Jinja2 (autoescape on); no inline script or style, so the
CSP of ``security.py`` holds. Sessions are a signed cookie ``gb_staff`` = ``user_id.issued.expiry.sig``
(HMAC-SHA256 with the console key of ``server/keys.py``, kept out of the database); the CSRF token of a session is an HMAC of the
cookie, and before sign-in an HMAC of a random ``gb_staff_pre`` cookie.

Everything staff change goes through ``sync.engine.push`` as mutations of a staff "device"
(one per user, ``uuid5(user id)``), so phones receive it by pull and the same merge rules apply.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable
from urllib.parse import urlencode

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from sync import accounts, engine
from sync.engine import area_tree
from sync.protocol import MutationIn, PushRequest, PushResult
from sync.scope import Actor, user_keys, visible
from sync.storage import Store
from sync.store import AreaTree, SQLiteStore, StoredRecord, iso, utcnow

from .. import metrics
from . import labels
from .i18n import translate

HERE = Path(__file__).resolve().parent.parent
SESSION_COOKIE = "gb_staff"
PRE_COOKIE = "gb_staff_pre"
LANG_COOKIE = "gb_lang"
STAFF_ROLES = ("staff", "admin")
ADMIN_ROLES = ("admin",)
FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
# The staff console acts through a device of its own per user: a stable id, so its edits have one origin.
CONSOLE_NS = uuid.UUID("8f6c2f1e-3b7a-5c8d-9e0f-1a2b3c4d5e6f")

_env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                   autoescape=select_autoescape(default=True, default_for_string=True))
_env.globals["fmt_rate"] = metrics.fmt_rate


def when(stamp: Any, date_only: bool = False) -> str:
    """A stored time (any offset) as the town's local time: ``2026-11-23 09:05``."""
    if not stamp or not isinstance(stamp, str):
        return "—"
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if dt.tzinfo is not None:
        dt = dt.astimezone(metrics.LOCAL_TZ)
    return dt.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M")


_env.filters["when"] = when


def render(name: str, http_status: int = 200, cookies: list[Cookie] | None = None, lang: str = "zh",
           **ctx: Any) -> Response[str]:
    html = _env.get_template(name).render(t=lambda s: translate(s, lang), lang=lang,
                                          L=labels.Labels(lang), **ctx)
    return Response(html, status_code=http_status, media_type="text/html; charset=utf-8", cookies=cookies or [],
                    headers={"Cache-Control": "no-store"})


# Flash messages after an action (?msg=code).
MESSAGES: dict[str, str] = {
    "saved": "已保存。", "accepted": "已受理。", "not_accepted": "已不予受理，网格员同步后可看到原因。",
    "merged": "已合并为重复事项。", "dispatched": "已派单，承办人同步后即可看到。", "supervised": "已列入督办。",
    "escalated": "已上报。", "moved": "状态已更新。", "noted": "已添加备注。", "unchanged": "没有需要保存的修改。",
    "rejected": "操作未被接受", "conflict": "与他人的修改冲突，已记入冲突列表，请处理。",
    "resolved": "冲突已处理。", "created": "已创建。", "revoked": "设备已注销，该设备将无法再同步。",
    "password": "密码已重置。", "password_revoked": "密码已重置，该用户的设备已注销。",
    "disabled": "已停用该用户并注销其设备。", "invalid_note": "请填写说明或原因。", "invalid_assignee_id": "请选择承办人。",
    "invalid_deadline": "日期格式不正确。", "invalid_status": "当前状态下不能执行此操作。",
    "invalid_duplicate_of": "请选择要合并到的事项。", "invalid_level": "请选择办理层级。",
    "invalid_category": "请选择分类。", "invalid_line": "请选择归口。", "invalid_urgency": "请选择紧急程度。",
    "invalid_to": "请选择新状态。", "invalid_action": "未知操作。", "invalid_resolution": "请选择处理方式。",
    "invalid_value": "请填写要采用的值。", "invalid_form": "输入有误，请检查后重试。",
}


def lang_of(request: Request) -> str:
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"


# -- sessions and CSRF ---------------------------------------------------------------------------

def _secret(request: Request) -> bytes:
    """The console key (``server/keys.py``): not in the database, so a copy of it signs nothing."""
    return request.app.state["console_key"]  # type: ignore[no-any-return]


def _sign(request: Request, msg: str) -> str:
    return hmac.new(_secret(request), msg.encode(), hashlib.sha256).hexdigest()


def make_session(request: Request, user_id: str, hours: int) -> str:
    """``user_id.issued.expiry.sig``: issued (ms) lets sign-out end every session issued before it."""
    now = time.time()
    floor = request.app.state["stores"].reader().get_meta(accounts.session_floor_key(user_id))
    issued = max(int(now * 1000), int(floor) + 1 if floor else 0)
    body = f"{user_id}.{issued}.{int(now) + hours * 3600}"
    return f"{body}.{_sign(request, 'session:' + body)}"


def end_sessions(request: Request, user_id: str) -> None:
    """Sign-out: every session of the user issued until now stops working, on this browser and on
    any other that holds a copy of the cookie (a new password and disabling do the same, in
    ``sync.accounts``, from the console and the CLI alike)."""
    accounts.end_sessions(request.app.state["stores"].writer, user_id)


def read_session(request: Request) -> str | None:
    """The user id of a valid, unexpired, not signed-out session cookie, else None."""
    value = request.cookies.get(SESSION_COOKIE) or ""
    parts = value.split(".")
    if len(parts) != 4 or not _DIGITS.fullmatch(parts[1]) or not _DIGITS.fullmatch(parts[2]):
        return None
    body = ".".join(parts[:3])
    if not _same(parts[3], _sign(request, "session:" + body)):
        return None
    now = time.time()
    issued, expiry = int(parts[1]), int(parts[2])
    hours = int(request.app.state["settings"].session_hours)
    # Issued at most now (a few seconds of slack: make_session may step 1 ms past a sign-out floor)
    # and lasting at most session_hours: a cookie from the future would outlive every sign-out.
    if expiry < now or issued > (now + 5) * 1000 or expiry > issued / 1000 + hours * 3600 + 5:
        return None
    store: Store = request.app.state["stores"].reader()
    floor = store.get_meta(accounts.session_floor_key(parts[0]))
    if floor is not None and issued <= int(floor):
        return None
    return parts[0]


def csrf_token(request: Request, basis: str) -> str:
    return _sign(request, "csrf:" + basis)


def csrf_ok(request: Request, basis: str, token: Any) -> bool:
    return bool(basis) and isinstance(token, str) and _same(token, csrf_token(request, basis))


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of what a client sent with a signature (``compare_digest`` on two
    ``str`` raises for non-ASCII text, which a client may well send)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def cookie(request: Request, key: str, value: str, max_age: int | None) -> Cookie:
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

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def current_user(request: Request) -> StaffUser | None:
    uid = read_session(request)
    if uid is None:
        return None
    store: Store = request.app.state["stores"].reader()
    rec = store.get("users", uid)
    if rec is None or rec.deleted or rec.data.get("active") is False or rec.data.get("role") not in STAFF_ROLES:
        return None
    d = rec.data
    return StaffUser(rec.id, d.get("username", ""), d.get("display_name") or d.get("username", ""), d["role"],
                     list(d.get("areas") or []))


# -- the page runner -----------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]{1,18}")


def whole_number(raw: Any, lo: int, hi: int) -> int | None:
    """``raw`` as an int when it is plain ASCII digits within ``lo``..``hi``, else None.

    ``int()`` alone also takes " 7\n", "１" (full width), "1_0" and numbers SQLite cannot hold.
    """
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if lo <= value <= hi else None


class Refused(Exception):
    """A page or action the user may not have: rendered as 403 (or 404 when it must not leak)."""

    def __init__(self, status: int = 403, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Page:
    """One request of a signed-in staff user: what every page handler needs."""

    request: Request
    user: StaffUser
    store: Store              # a reader
    lang: str
    csrf: str
    tree: AreaTree
    allowed: set[str] = field(default_factory=set)   # the area ids this user may see
    roots: list[str] = field(default_factory=list)   # the top areas of their scope
    names: dict[str, str] = field(default_factory=dict)  # area id -> name

    @property
    def query(self) -> Any:
        return self.request.query_params

    @property
    def writer(self) -> SQLiteStore:
        return self.request.app.state["stores"].writer  # type: ignore[no-any-return]

    def t(self, s: str) -> str:
        return translate(s, self.lang)

    def number(self, name: str, default: int, lo: int, hi: int, message: str) -> int:
        """A whole number from the query string, ``default`` when absent or empty, else a 400 page
        with ``message`` (in Chinese, translated) unless it is ASCII digits from ``lo`` to ``hi``."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        value = whole_number(raw, lo, hi)
        if value is None:
            raise Refused(400, message)
        return value

    def render(self, name: str, http_status: int = 200, **ctx: Any) -> Response[str]:
        url = self.request.url
        ctx.setdefault("why", self.query.get("why") or "")
        return render(name, http_status=http_status, lang=self.lang, user=self.user, csrf=self.csrf, page=self,
                      msg=self.query.get("msg") or "", messages=MESSAGES,
                      request_path=url.path + ("?" + url.query if url.query else ""), **ctx)

    def area_name(self, area_id: str | None) -> str:
        return self.names.get(area_id or "", area_id or "")

    def area_path(self, area_id: str | None, below: int = 2) -> str:
        """"村 / 网格": the area and its parents up to ``below`` levels, outermost first."""
        return " / ".join(self.area_name(a) for a in reversed(self.tree.path(area_id)[:below]))

    def area_key(self, area_id: str) -> tuple[Any, ...]:
        """The sort key of an area by its own name (``natural_key``): among siblings."""
        return natural_key(self.area_name(area_id))

    def path_key(self, area_id: str) -> tuple[Any, ...]:
        """The sort key of an area in a list of areas of all levels: each one under its parent."""
        return tuple(natural_key(self.area_name(x)) for x in reversed(self.tree.path(area_id)))

    def sort_areas(self, area_ids: Iterable[str]) -> list[str]:
        """Areas in the order every list and select of the console shows them (``path_key``)."""
        return sorted(area_ids, key=self.path_key)

    def options(self) -> list[str]:
        """Areas to offer in a filter: the user's top areas and everything below, outermost first."""
        out: set[str] = set()
        for r in self.roots:
            out.update(self.tree.subtree(r))
        return self.sort_areas(out)

    def can_see_area(self, area_id: str | None) -> bool:
        return bool(area_id) and area_id in self.allowed

    def actor(self) -> Actor:
        return console_actor(self.user.id, self.user.role, self.user.areas)

    @cached_property
    def keys(self) -> frozenset[str]:
        """The user's scope keys: the engine's own rule for what they may see (``sync.scope``)."""
        return user_keys(self.actor(), self.tree)

    def sees(self, rec: StoredRecord) -> bool:
        """Whether this user may see a record: the same predicate as a phone's pull."""
        return visible(self.keys, rec.keys)

    def push(self, *mutations: dict[str, Any]) -> list[PushResult]:
        """Apply staff changes through the engine, one batch (one transaction), like a phone's push."""
        now = iso(utcnow())
        req = PushRequest(protocol=1, mutations=[
            MutationIn(mid=engine.uuid7(), collection=m["collection"], id=m["id"], op=m.get("op", "upsert"),
                       base=m.get("base", 0), fields=m.get("fields", {}), at=now) for m in mutations])
        return engine.push(self.writer, self.actor(), req).results

    def why(self, result: PushResult) -> str:
        """Why the engine refused a staff change, in the page's language (``labels.error_text``: the
        engine's own message is English and names fields)."""
        return labels.error_text(result.error.code if result.error else "invalid_request", self.lang)

    def audit(self, action: str, coll: str | None = None, rid: str | None = None,
              details: dict[str, Any] | None = None) -> None:
        with self.writer.transaction():
            self.writer.audit(self.user.id, action, coll, rid, details)

    def back(self, path: str, msg: str = "", **params: Any) -> Response[Any]:
        q = {k: v for k, v in params.items() if v not in (None, "")}
        if msg:
            q["msg"] = msg
        return Redirect(path + ("?" + urlencode(q) if q else ""), status_code=303)


# Chinese numerals as area names write them (第一网格, 十二组, 第二十三网格) and plain digits.
_NUMERAL = re.compile(r"[0-9]+|[零〇一二两三四五六七八九十百千]+")
_DIGIT_ZH = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNIT_ZH = {"十": 10, "百": 100, "千": 1000}


def _zh_number(text: str) -> int:
    """一 → 1, 十 → 10, 十二 → 12, 二十三 → 23, 一百零五 → 105; digit by digit when no unit (一〇五 → 105)."""
    if not any(ch in _UNIT_ZH for ch in text):
        return int("".join(str(_DIGIT_ZH[ch]) for ch in text))
    total, digit = 0, 0
    for ch in text:
        if ch in _UNIT_ZH:
            total += (digit or 1) * _UNIT_ZH[ch]
            digit = 0
        else:
            digit = _DIGIT_ZH[ch]
    return total + digit


def natural_key(name: str | None) -> tuple[Any, ...]:
    """The one sort key of area names (grids, villages, 片, 组): numbers in a name, in digits or in
    Chinese numerals, compare as numbers: 第一、第二、第三…第九、第十, 第9 before 第10.

    Each part is a (kind, number, text) triple so that a number and a text never meet in a comparison.
    """
    out: list[tuple[int, int, str]] = []
    pos = 0
    text = name or ""
    for m in _NUMERAL.finditer(text):
        if m.start() > pos:
            out.append((1, 0, text[pos:m.start()]))
        token = m.group()
        out.append((0, int(token) if token.isdigit() else _zh_number(token), token))
        pos = m.end()
    if pos < len(text):
        out.append((1, 0, text[pos:]))
    return tuple(out)


def console_actor(user_id: str, role: str, areas: list[str]) -> Actor:
    """A staff user acting through the console's device of theirs (the CLI's imports ``--as`` them too)."""
    device = str(uuid.uuid5(CONSOLE_NS, user_id))
    return Actor(user_id, role, tuple(areas), device, device)


def scope_of(user: StaffUser, tree: AreaTree) -> tuple[list[str], set[str]]:
    """The top areas and every area a staff user may see (admin: the whole tree)."""
    # as the API's scope keys: an admin with areas works in those, an admin without any in the whole tree
    roots = [a for a in user.areas if a in tree]
    if user.is_admin and not roots:
        roots = tree.roots()
    allowed: set[str] = set()
    for a in roots:
        allowed.update(tree.subtree(a))
    return roots, allowed


def forbidden(lang: str = "zh", status: int = 403, message: str = "") -> Response[str]:
    """A refusal page: 403/404 ("无权访问"), or 400 for a request the console cannot read."""
    return render("staff/forbidden.html", http_status=status, lang=lang, message=translate(message, lang),
                  status=status)


def _page(request: Request, user: StaffUser) -> Page:
    store: Store = request.app.state["stores"].reader()
    tree = area_tree(store)
    roots, allowed = scope_of(user, tree)
    session = request.cookies.get(SESSION_COOKIE) or ""
    names = store.live_area_names()
    return Page(request, user, store, lang_of(request), csrf_token(request, session), tree, allowed, roots, names)


def _run(request: Request, fn: Callable[..., Response[Any]], args: tuple[Any, ...], roles: tuple[str, ...],
         form: dict[str, Any] | None) -> Response[Any]:
    user = current_user(request)
    if user is None:
        if form is not None:
            return forbidden(lang_of(request), 403, "登录已过期，请重新登录。")
        nxt = request.url.path + (("?" + request.url.query) if request.url.query else "")
        return Redirect("/staff/login" + ("?" + urlencode({"next": nxt}) if nxt not in ("/staff", "/staff/") else ""),
                        status_code=303)
    if form is not None:
        session = request.cookies.get(SESSION_COOKIE) or ""
        if not csrf_ok(request, session, form.get("csrf")):
            return forbidden(lang_of(request), 403, "表单已失效（CSRF 校验失败），请返回刷新后重试。")
    if user.role not in roles:
        return forbidden(lang_of(request))
    page = _page(request, user)
    try:
        return fn(page, *args) if form is None else fn(page, form, *args)
    except Refused as e:
        return forbidden(page.lang, e.status, e.message)


async def run(request: Request, fn: Callable[..., Response[Any]], *args: Any,
              roles: tuple[str, ...] = STAFF_ROLES) -> Response[Any]:
    """Run a GET page handler ``fn(page, *args)`` in a worker thread for a signed-in staff user."""
    return await anyio.to_thread.run_sync(_run, request, fn, args, roles, None)


async def run_form(request: Request, form: dict[str, Any], fn: Callable[..., Response[Any]], *args: Any,
                   roles: tuple[str, ...] = STAFF_ROLES) -> Response[Any]:
    """Run a POST handler ``fn(page, form, *args)``: signed in, CSRF checked, role checked."""
    return await anyio.to_thread.run_sync(_run, request, fn, args, roles, form)


# The dates the console works with. Python's own range (years 1 to 9999) is no use: a period or
# month at its edge overflows the first timedelta added to it (a 500 from ?end=9999-12-31).
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2099, 12, 31)


def parse_date(value: Any, default: date | None) -> date | None:
    """A ``YYYY-MM-DD`` from 2000 to 2099, else ``default`` (as for any text that is not a date)."""
    if not value or not isinstance(value, str):
        return default
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return default
    return day if FIRST_DATE <= day <= LAST_DATE else default


def local_today() -> date:
    return datetime.now(metrics.LOCAL_TZ).date()


# The one policy of sync.accounts (the CLI's too), each reason said in Chinese.
PASSWORD_RULES_ZH = {
    "too_short": "密码至少8位。",
    "too_long": "密码最多128位。",
    "control": "密码不能包含制表符、换行等控制字符。",
    "username": "密码不能包含用户名。",
    "repeated": "密码不能是同一个字符的重复。",
    "common": "密码过于常见（是最先被尝试的密码之一），请换一个。",
    "reused": "新密码不能与初始密码相同。",
}
