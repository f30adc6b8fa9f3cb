"""Staff console, first slice: sign-in, CSRF, sessions and the dashboard page (issue 6)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings

from . import backend
from .conftest import build_town, new_id

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def client(tmp_path: Any) -> Any:
    db = backend.new_db(tmp_path)
    s = backend.open_store(db)
    s.migrate()
    t = build_town(s)
    r = t.push1("admin", t.mut("areas", new_id(), {"level": "village", "name": XSS, "parent_id": t.ids["town"]}))
    assert r.status == "applied", r
    t.matter("w1", raised_at="2026-03-02T09:00:00+08:00")
    s.close()
    app = create_app(Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs"),
                                                          pwa_dir=str(tmp_path / "no-pwa"))))
    with TestClient(app, base_url="http://testserver.local") as c:
        yield c


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html
    return m.group(1)


def login(c: Any, username: str, password: str = "demo") -> Any:
    page = c.get("/staff/login")
    return c.post("/staff/login", data={"username": username, "password": password, "csrf": csrf(page.text)},
                  follow_redirects=False)


def test_login_page_renders(client: Any) -> None:
    r = client.get("/staff/login")
    assert r.status_code == 200
    assert 'name="username"' in r.text and 'name="password"' in r.text and 'type="hidden" name="csrf"' in r.text
    assert "<script" not in r.text and "style=" not in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/staff/static/staff.css").status_code == 200


def test_staff_signs_in_and_sees_dashboard(client: Any) -> None:
    r = login(client, "staff1")
    assert r.status_code == 303 and r.headers["location"] == "/staff/"
    cookie = r.headers["set-cookie"]
    assert "gb_staff=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie
    page = client.get("/staff/?start=2026-01-01&end=2026-12-31")
    assert page.status_code == 200
    for label in ("化解率", "按时办结率", "当前超期", "督办中", "满意度", "不下山", "独居老人", "低保户",
                  "排名", "每周趋势", "同步状态", "<svg", "杖锡村", "李家坑村"):
        assert label in page.text, label
    assert re.search(r'id="collected"[^>]*>1<', page.text)
    assert re.search(r'id="resolution-rate"[^>]*>0\.0%<', page.text)
    assert re.search(r'id="on-time-rate"[^>]*>—<', page.text)
    assert "<script" not in page.text and "style=" not in page.text


def test_worker_is_refused_and_pointed_to_app(client: Any) -> None:
    r = login(client, "worker1")
    assert r.status_code == 403
    assert "网格员和代办员请使用手机应用" in r.text and 'href="/"' in r.text
    assert "gb_staff=" not in r.headers.get("set-cookie", "").replace("gb_staff_pre", "")
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_post_without_csrf_is_refused(client: Any) -> None:
    client.get("/staff/login")
    r = client.post("/staff/login", data={"username": "staff1", "password": "demo"}, follow_redirects=False)
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    r = client.post("/staff/login", data={"username": "staff1", "password": "demo", "csrf": "0" * 64},
                    follow_redirects=False)
    assert r.status_code == 403


def test_wrong_password_shows_error(client: Any) -> None:
    r = login(client, "staff1", "nope")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_dashboard_without_session_redirects(client: Any) -> None:
    r = client.get("/staff/", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"] == "/staff/login"
    client.cookies.set("gb_staff", "someone.99999999999.deadbeef", path="/staff")
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_ends_session(client: Any) -> None:
    login(client, "staff1")
    page = client.get("/staff/")
    assert client.post("/staff/logout", data={}, follow_redirects=False).status_code == 403
    r = client.post("/staff/logout", data={"csrf": csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login"
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_record_text_renders_escaped(client: Any) -> None:
    login(client, "staff1")
    page = client.get("/staff/?start=2026-01-01&end=2026-12-31")
    assert XSS not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_admin_sees_roots(client: Any) -> None:
    assert login(client, "admin").status_code == 303
    page = client.get("/staff/")
    assert page.status_code == 200 and "海曙区" in page.text
