"""A grid worker imported from the county's .xlsx signs in on the phone for the first time with the
one-time password from the passwords sheet: the app asks for a new password (in Chinese), refuses a
weak one with the reason, then signs in and syncs; the one-time password no longer works."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import httpx
import openpyxl
from playwright.sync_api import Page, expect

from .conftest import ROOT, Server
from .helpers import msgs


def _import(server: Server, tmp_path: Path) -> str:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["用户名", "姓名", "手机号码", "角色", "工作区域"])
    ws.append(["xinren", "陈新人", "13811112222", "网格员", "章水镇/杖锡村/杖锡村第一网格"])
    src, out = tmp_path / "users.xlsx", tmp_path / "passwords.xlsx"
    wb.save(src)
    subprocess.run([sys.executable, "-m", "server", "import", "users", str(src), "--passwords", str(out),
                    "--db", str(server.db)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    sheet = openpyxl.load_workbook(io.BytesIO(out.read_bytes()), read_only=True).worksheets[0]
    [row] = [r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == "xinren"]
    return str(row[2])


def test_first_sign_in_on_the_phone_sets_a_new_password(page: Page, fresh_server: Server, tmp_path: Path) -> None:
    initial = _import(fresh_server, tmp_path)
    page.goto(fresh_server.url + "/")
    zh = msgs(page)
    page.get_by_label(zh["login.username"]).fill("xinren")
    page.get_by_label(zh["login.password"]).fill(initial)
    page.get_by_role("button", name=zh["login.submit"]).click()
    expect(page.get_by_role("alert").first).to_have_text(zh["login.change_required"])
    new, again = page.get_by_label(zh["login.new_password"] + " *", exact=True), page.get_by_label(zh["login.new_password2"])
    expect(new).to_be_visible()
    # A common password is refused, with the server's reason in Chinese; the one-time password stands.
    new.fill("12345678")
    again.fill("12345678")
    page.get_by_role("button", name=zh["login.submit_new_password"]).click()
    expect(page.get_by_role("alert").first).to_have_text(zh["login.pw_common"])
    # Two entries that differ never reach the server.
    new.fill("山里的新密码 2026")
    again.fill("山里的新密码 2027")
    page.get_by_role("button", name=zh["login.submit_new_password"]).click()
    expect(page.get_by_role("alert").first).to_have_text(zh["login.new_password_differs"])
    again.fill("山里的新密码 2026")
    page.get_by_role("button", name=zh["login.submit_new_password"]).click()
    page.get_by_test_id("household-row").first.wait_for(state="visible", timeout=60_000)
    # The one-time password is spent; the new one signs in anywhere.
    with httpx.Client(base_url=fresh_server.url + "/api/v1", timeout=30) as c:
        old = c.post("/auth/login", json={"username": "xinren", "password": initial})
        assert old.status_code == 401 and old.json()["error"]["code"] == "invalid_credentials"
        assert c.post("/auth/login", json={"username": "xinren", "password": "山里的新密码 2026"}).status_code == 200
