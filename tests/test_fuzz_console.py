"""Fuzzing what the OpenAPI fuzzing (tests/test_fuzz_api.py) cannot see: every staff console route
and the static paths of the field app and the console (issue 12).

Bounded and seeded (hypothesis, ``derandomize``): for every console route, signed in as staff and
as an admin, requests with hostile path segments (control characters, NUL, ``%0a``, overlong,
unicode, ``..``), hostile query values (huge, negative, float, exponent and full-width numbers,
wrong types, dates out of any calendar) and hostile form bodies (with a valid CSRF token, so they
reach the handlers); and hostile paths under ``/``, ``/js/`` and ``/staff/static/``. Every answer:

- is not a 5xx;
- is in the protocol's error shape when it is JSON and an error;
- leaves no raw control character (newline included) in any log record.

``GRIDBOOK_FUZZ_EXAMPLES`` (default 12 per route and session) sets the size; the default run takes
well under a minute.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings
from sync import accounts

from . import backend
from .conftest import PASSWORD, Town, new_id, password_hash
from .test_api import LEAKS, Template, town_template  # noqa: F401

EXAMPLES = int(os.environ.get("GRIDBOOK_FUZZ_EXAMPLES", "12"))
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Query parameters the console reads, whatever the page (a page ignores the others).
QUERY_KEYS = ("page", "area", "q", "tag", "status", "category", "line", "overdue", "supervised", "assignee",
              "channel", "sort", "handling", "start", "end", "month", "list", "format", "edit", "action", "user",
              "next", "to", "msg", "why")
# Form fields the console's POST handlers read.
FORM_KEYS = ("action", "note", "version", "status", "assignee_id", "duplicate_of", "deadline", "level", "category",
             "line", "urgency", "to", "resolution", "value.notes", "value.head_name", "name", "parent_id", "mountain",
             "name_zh", "name_en", "lowest_level", "deadline_days", "sensitive", "active", "materials", "username",
             "password", "role", "areas", "display_name", "phone", "confirm", "revoke_devices", "resident_id", "next",
             "csrf")

NUMBERS = ["0", "-1", "1", "2", "999999999", "100000000000000000000", "1" + "0" * 400, "1e22", "-1e22", "1.5",
           "NaN", "inf", "-inf", "0x10", "１２", "٣", "²", " 1\n", "1_0", "+1", "1e-5", "9" * 30, "-0"]
DATES = ["0001-01-01", "9999-12-31", "9999-12", "0001-01", "1999-12", "2100-01", "2026-02-30", "2026-13-01", "20261201", "2026-12", "9999-99",
         "0000-00", "2026-12-01T25:00", "-2026-01-01", "2026-W49-1"]
NASTY = ["", " ", "\x00", "\n", "\r\n", "%0a", "%00", "\t", "\x1b[31m", "\u2028", "\ufffe", "'", '"', "<script>",
         "../../../etc/passwd", "..", "/", "\\", "//evil.example/", "https://evil.example/", "javascript:alert(1)",
         "é", "网格", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\ufeff", "a" * 5000, "x" * 300, "[]", "{}", "null", "true", "None",
         "%s%s%s", "{0}", "' OR 1=1 --", "admin", "yes", "on"]
VALUES = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(DATES), st.sampled_from(NASTY),
                   st.text(max_size=40), st.integers(-10 ** 30, 10 ** 30).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))
SEGMENTS = st.one_of(st.sampled_from(["%00", "%0a", "%0d%0a", "..", "%2e%2e", "%2e%2e%2f%2e%2e", "a" * 300,
                                      "a" * 3000, "%c0%ae", "%ff", "%e2%80%a8", "网格", "%E7%BD%91", "%", "%zz",
                                      "index.html%00.js", "..%2f..%2fREADME.md", "~", ".git", "%u0000"]),
                     st.text(min_size=1, max_size=30).map(lambda s: urllib.parse.quote(s, safe="")),
                     st.sampled_from(NUMBERS + DATES).map(lambda s: urllib.parse.quote(s, safe="")))


class Records(logging.Handler):
    """Every log record of every logger, while the test runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Console:
    client: TestClient[Any]
    sessions: dict[str, tuple[str, str]]   # username -> (cookie, csrf)
    params: dict[str, str]                 # path parameter -> a real id of the demo records
    log: Records

    def use(self, username: str) -> str:
        cookie, csrf = self.sessions[username]
        self.client.cookies.clear()
        self.client.cookies.set("gb_staff", cookie, domain="testserver.local", path="/staff")
        return csrf


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:500]
    return m.group(1)


@pytest.fixture(scope="module")
def console(town_template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("fuzzconsole")
    db = backend.copy_db(town_template.db, tmp, keep=True)
    t = town_template.town
    with_records = backend.open_store(db)
    try:
        town = Town(with_records, dict(t.ids), dict(t.actors), dict(t.tokens))
        hid = town.household("w1")
        rid = new_id()
        assert town.push1("w1", town.mut("residents", rid, {"household_id": hid, "name": "李阿婆",
                                                            "id_number": "330203196512071234"})).status == "applied"
        mid = town.matter("w1", household=hid)
        [rej] = town.push("admin", town.mut("households", hid, {"notes": "被拒"}, base=10 ** 9))
        # The target of the user and device routes: a user of its own, so the fuzzing never disables
        # or revokes the sessions it signs in with.
        victim = accounts.create_user(with_records, "fuzzvictim", PASSWORD, "grid_worker", [t.ids["g1"]],
                                      password_hash=password_hash())
        device = accounts.login(with_records, "fuzzvictim", PASSWORD, "victim's phone").device_id
    finally:
        with_records.close()
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    app = create_app(Settings(db=db, **backend.beside_db(tmp, blob_dir=str(tmp / "blobs"))))   # the real field app: static paths too
    try:
        with TestClient(app, base_url="http://testserver.local") as c:
            sessions = {}
            for username in ("staff1", "admin"):
                c.cookies.clear()
                page = c.get("/staff/login")
                r = c.post("/staff/login", data={"username": username, "password": PASSWORD,
                                                 "csrf": _csrf(page.text)}, follow_redirects=False)
                assert r.status_code == 303, r.text
                cookie = c.cookies.get("gb_staff") or ""
                sessions[username] = (cookie, _csrf(c.get("/staff/").text))
            params = {"household_id": hid, "matter_id": mid, "conflict_id": rej.conflict_id or "",
                      "sha256": "5" * 64, "user_id": victim, "device_id": device,
                      "code": "proxy.social_insurance_registration"}
            yield Console(c, sessions, params, handler)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def console_routes() -> list[tuple[str, str]]:
    """(method, path format) of every console route, from the app itself (so a new page is fuzzed
    without anyone remembering to add it)."""
    app = create_app(Settings(db=":memory:", pwa_dir="/nonexistent", secret_key="k" * 32))
    try:
        return sorted({(m, r.path_format) for r in app.routes for m in getattr(r, "methods", ())
                       if r.path.startswith("/staff") and not r.path.startswith("/staff/static")
                       and m in ("GET", "POST")})
    finally:
        app.state["stores"].close()


ROUTES = console_routes()
# Signing out would end the sessions the rest of the run uses; sign-in is fuzzed without a session.
SKIP = {("POST", "/staff/logout")}


def check(c: Console, r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:500])
    ctype = r.headers.get("content-type", "")
    if r.status_code >= 400 and ctype.startswith("application/json") and r.request.method != "HEAD":
        body = r.json()
        assert isinstance(body, dict) and set(body) == {"error"}, (what, body)
        assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "details"}, (what, body)
    for leak in LEAKS:
        assert leak not in r.text, (what, leak, r.text[:500])
    for record in c.log.records:
        message = record.getMessage()
        assert not CONTROL.search(message), (what, record.name, message[:300])
        assert record.levelno < logging.ERROR or record.name == "httpx", (what, record.name, message[:300])
    c.log.records.clear()


def _path(fmt: str, c: Console, hostile: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return hostile.get(name) or urllib.parse.quote(c.params.get(name, "x"), safe="")
    return re.sub(r"\{(\w+)(?::\w+)?\}", sub, fmt)


@pytest.mark.parametrize("method,fmt", [r for r in ROUTES if r not in SKIP], ids=[f"{m} {p}" for m, p in ROUTES
                                                                                  if (m, p) not in SKIP])
def test_fuzz_console_route(console: Console, method: str, fmt: str) -> None:
    names = re.findall(r"\{(\w+)(?::\w+)?\}", fmt)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(who=st.sampled_from(["staff1", "admin"]),
           segments=st.fixed_dictionaries({}, optional={n: SEGMENTS for n in names}),
           query=st.dictionaries(st.sampled_from(QUERY_KEYS), VALUES, max_size=4),
           form=st.dictionaries(st.sampled_from(FORM_KEYS), VALUES | st.lists(VALUES, max_size=3), max_size=8),
           good_csrf=st.booleans())
    def run(who: str, segments: dict[str, str], query: dict[str, str], form: dict[str, Any], good_csrf: bool) -> None:
        csrf = console.use(who)
        path = _path(fmt, console, segments)
        what = f"{who} {method} {path[:200]} {query!r:.300} {form!r:.300}"
        if method == "GET":
            r = console.client.get(path, params=query, follow_redirects=False)
        else:
            if good_csrf or "csrf" not in form:
                form = {**form, "csrf": csrf}
            r = console.client.post(path, params=query, data=form, follow_redirects=False)
        check(console, r, what)

    run()


STATIC_PREFIXES = ["/", "/js/", "/staff/static/", "/icons/", "/staff/"]


@settings(max_examples=max(EXAMPLES * 8, 40), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(prefix=st.sampled_from(STATIC_PREFIXES), segments=st.lists(SEGMENTS, min_size=1, max_size=4),
       suffix=st.sampled_from(["", ".js", ".css", ".html", "/", "%00.js", "/index.html"]),
       method=st.sampled_from(["GET", "HEAD"]))
def test_fuzz_static_paths(console: Console, prefix: str, segments: list[str], suffix: str, method: str) -> None:
    console.client.cookies.clear()
    path = prefix + "/".join(segments) + suffix
    r = console.client.request(method, path, follow_redirects=False)
    check(console, r, f"{method} {path[:300]}")


def test_the_fuzzing_reaches_every_console_route() -> None:
    """Not vacuous: the routes fuzzed are the console's (more than the pages of one module), and
    the static paths include the field app's."""
    paths = {p for _, p in ROUTES}
    assert {"/staff/matters", "/staff/households/{household_id}", "/staff/admin/users/{user_id}",
            "/staff/audit", "/staff/reports/monthly"} <= paths, paths
    assert len(ROUTES) >= 25, ROUTES
