"""`gridbook import users` and the users page's upload (issue 14, onboarding step 3): users from an
.xlsx with Chinese headers, checked row by row, written all or none through the engine, each new one
with a one-time password handed out once."""

from __future__ import annotations

import base64
import io
import re
import uuid
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from server.imports import users as user_import
from server.staff.reports import XLSX
from sync import accounts
from sync.engine import area_tree
from sync.errors import SyncError

from .conftest import PASSWORD, Town
from .test_staff_console import Console, con, csrf  # noqa: F401

HEADER = ["账号", "姓名", "联系电话", "角色", "工作区域"]     # synonyms, as a county's own sheet has them


def xlsx(rows: list[list[Any]], header: list[str] = HEADER, title: str | None = None) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    if title:
        ws.append([title])
    ws.append(header)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def with_codes(t: Town) -> None:
    """Give 杖锡村 its national code, as `area import` keeps it, and make two grids named alike."""
    rec = t.store.get("areas", t.ids["v1"])
    assert rec is not None
    [r] = t.push("admin", t.mut("areas", t.ids["v1"], {"code": "330203101201"}, base=rec.version))
    assert r.status == "applied", r
    for key, village in (("x1", "v1"), ("x2", "v2")):
        t.ids[key] = str(uuid.uuid4())
        [r] = t.push("admin", t.mut("areas", t.ids[key], {"level": "grid", "name": "第一网格",
                                                           "parent_id": t.ids[village]}))
        assert r.status == "applied", r


ROWS = [
    ["zhangsan", "张三", 13812345678, "网格员", "章水镇/杖锡村/杖锡村第一网格"],
    ["lisi", "李四", "+86 139 0000 1111", "代办员", "330203101201"],
    ["wangwu", "王五", "0574-88881234", "工作人员", "杖锡村、李家坑村"],
    ["zhaoliu", "赵六", None, "admin", ""],
    ["qianqi", "钱七", "", "网格员", "李家坑村/第一网格"],
]


def test_import_creates_users_with_roles_areas_and_one_time_passwords(town: Town) -> None:
    with_codes(town)
    store, ids = town.store, town.ids
    data = xlsx(ROWS, title="海曙区网格员名册")
    dry = user_import.plan(store, data)
    assert dry.ok, dry.problems
    assert [r.username for r in dry.creates] == ["zhangsan", "lisi", "wangwu", "zhaoliu", "qianqi"]
    assert store.user_by_username("zhangsan") is None                   # the dry run wrote nothing
    done = user_import.apply(store, data, by=town.actors["admin"].user_id)
    assert done.plan.ok and len(done.passwords) == 5
    want = {"zhangsan": ("grid_worker", [ids["g1"]], "13812345678"), "lisi": ("proxy_agent", [ids["v1"]], "13900001111"),
            "wangwu": ("staff", [ids["v1"], ids["v2"]], "0574-88881234"), "zhaoliu": ("admin", [], None),
            "qianqi": ("grid_worker", [ids["x2"]], None)}
    for username, name, password in done.passwords:
        u = store.user_by_username(username)
        assert u is not None and (u.data["role"], u.data["areas"], u.data.get("phone")) == want[username]
        assert u.data["display_name"] == name and u.data["active"] is True
        assert store.password_must_change(u.id)
        assert len(password) == 10 and accounts.password_problem(password, username) is None
        assert password not in (store.password_hash(u.id) or "")
        # The one-time password works only to choose a new one.
        with pytest.raises(SyncError) as e:
            accounts.sign_in(store, store, username, password)
        assert e.value.code == "password_change_required"
    accounts.sign_in(store, store, "zhangsan", done.passwords[0][2], "my own passphrase")
    assert not store.password_must_change(store.user_by_username("zhangsan").id)  # type: ignore[union-attr]
    # Written through the engine: the grid worker of 杖锡村第一网格 receives the new colleague by pull.
    pulled = town.pull_all("w1")
    assert any(k[0] == "users" and c.data.get("username") == "zhangsan" for k, c in pulled.items() if c.data)


def test_reimport_changes_nothing_and_a_changed_row_updates_without_touching_the_password(town: Town) -> None:
    with_codes(town)
    store = town.store
    data = xlsx(ROWS)
    user_import.apply(store, data)
    uid = store.user_by_username("zhangsan").id  # type: ignore[union-attr]
    digest = store.password_hash(uid)
    seq = store.conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]
    audit = store.conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    again = user_import.apply(store, data)
    assert again.plan.ok and not again.plan.creates and not again.plan.updates and not again.passwords
    assert len(again.plan.unchanged) == 5
    assert store.conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0] == seq
    assert store.conn.execute("SELECT count(*) FROM audit").fetchone()[0] == audit
    changed = [list(r) for r in ROWS]
    changed[0] = ["zhangsan", "张三丰", "13812345679", "工作人员", "杖锡村"]
    plan = user_import.plan(store, xlsx(changed))
    assert [(r.username, sorted(r.changes)) for r in plan.updates] == [
        ("zhangsan", ["areas", "display_name", "phone", "role"])]
    done = user_import.apply(store, xlsx(changed))
    assert not done.passwords
    u = store.user_by_username("zhangsan")
    assert u is not None and u.data["display_name"] == "张三丰" and u.data["role"] == "staff"
    assert u.data["areas"] == [town.ids["v1"]] and u.data["phone"] == "13812345679"
    assert store.password_hash(uid) == digest and store.password_must_change(uid)
    # An existing user of the town is updated too, and keeps their own password.
    user_import.apply(store, xlsx([["worker1", "李秀英", "13700000000", "网格员", "杖锡村/杖锡村第二网格"]]))
    w1 = store.user_by_username("worker1")
    assert w1 is not None and w1.data["areas"] == [town.ids["g2"]]
    assert accounts.check_password(store, "worker1", PASSWORD).id == w1.id and not store.password_must_change(w1.id)


def test_bad_rows_are_reported_by_row_and_nothing_is_written(town: Town) -> None:
    with_codes(town)
    store = town.store
    before = store.conn.execute("SELECT count(*) FROM users").fetchone()[0]
    rows = [
        ["good1", "好人", "13812345678", "网格员", "杖锡村第一网格"],            # row 2: valid, not written either
        ["bad1", "甲", "13812345678", "村长", "杖锡村"],                         # 3: unknown role
        ["bad2", "乙", "12345", "网格员", "杖锡村"],                              # 4: bad phone
        ["bad3", "丙", "", "网格员", "第一网格"],                                 # 5: ambiguous area
        ["bad4", "丁", "", "网格员", "章水镇/没有这个村"],                         # 6: unknown area
        ["good1", "重复", "", "网格员", "杖锡村"],                                # 7: duplicate username
        ["bad 5", "", "", "网格员", ""],                                          # 8: bad username, no name, no area
    ]
    plan = user_import.plan(store, xlsx(rows))
    got = {(p.row, p.column, p.value) for p in plan.problems}
    assert got == {(3, "角色", "村长"), (4, "手机号码", "12345"), (5, "工作区域", "第一网格"),
                   (6, "工作区域", "章水镇/没有这个村"), (7, "用户名", "good1"), (8, "用户名", "bad 5"),
                   (8, "姓名", ""), (8, "工作区域", "")}, plan.problems
    assert all(re.search(r"[\u4e00-\u9fff]", p.reason) for p in plan.problems)
    assert "第 2 行" in next(p.reason for p in plan.problems if p.row == 7)
    assert "不唯一" in next(p.reason for p in plan.problems if p.row == 5)
    done = user_import.apply(store, xlsx(rows))
    assert not done.plan.ok and not done.passwords
    assert store.conn.execute("SELECT count(*) FROM users").fetchone()[0] == before
    # A file that is not a workbook, or lacks a required column, is refused as a whole.
    assert "xlsx" in user_import.plan(store, b"PK\x03\x04 not really").problems[0].reason
    missing = user_import.plan(store, xlsx([["a1", "网格员"]], header=["用户名", "角色"]))
    assert {p.column for p in missing.problems} == {"姓名", "工作区域"}


def test_an_area_admin_imports_only_inside_their_area(town: Town) -> None:
    with_codes(town)
    store, ids = town.store, town.ids
    scope = user_import.Scope(set(area_tree(store).subtree(ids["v1"])))
    rows = [["inside", "甲", "", "网格员", "杖锡村/杖锡村第一网格"],
            ["outside", "乙", "", "网格员", "李家坑村网格"],
            ["boss", "丙", "", "管理员", "杖锡村"],
            ["worker3", "李海波", "", "网格员", "杖锡村第一网格"]]       # worker3 works in 李家坑村
    plan = user_import.plan(store, xlsx(rows), scope)
    assert {(p.row, p.column) for p in plan.problems} == {(3, "工作区域"), (4, "角色"), (5, "用户名")}, plan.problems
    assert user_import.plan(store, xlsx(rows[:1]), scope).ok


def test_the_cli_dry_runs_then_writes_the_passwords_once(town: Town, tmp_path: Path, db: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    with_codes(town)
    src = tmp_path / "users.xlsx"
    src.write_bytes(xlsx(ROWS))
    assert main(["import", "users", str(src), "--dry-run", "--db", db]) == 0
    assert "5 new" in capsys.readouterr().out and town.store.user_by_username("lisi") is None
    out = tmp_path / "passwords.xlsx"
    assert main(["import", "users", str(src), "--passwords", str(out), "--db", db]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    sheet = openpyxl.load_workbook(io.BytesIO(out.read_bytes()), read_only=True).worksheets[0]
    rows = [r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] and r[2]]
    assert [r[0] for r in rows] == ["zhangsan", "lisi", "wangwu", "zhaoliu", "qianqi"]
    user = accounts.sign_in(town.store, town.store, "lisi", str(rows[1][2]), "a new passphrase")
    assert user.data["role"] == "proxy_agent"
    # The passwords file must be new: an existing one is refused before anything is written.
    assert main(["import", "users", str(src), "--passwords", str(out), "--db", db]) == 1
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx([["x1", "某", "", "村长", "杖锡村"]]))
    assert main(["import", "users", str(bad), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "村长" in err and "未知角色" in err and "nothing was written" in err


# -- the users page ----------------------------------------------------------------------------------

def _upload(con: Console, data: bytes, action: str = "preview") -> Any:
    page = con.c.get("/staff/admin/users")
    return con.c.post("/staff/admin/users/import", data={"csrf": csrf(page.text), "action": action},
                      files={"file": ("用户.xlsx", data, XLSX)})


def test_the_users_page_previews_then_applies_and_offers_the_passwords_once(con: Console) -> None:
    with_codes(con.town)
    assert con.login("admin").status_code == 303
    template = con.c.get("/staff/admin/users/template.xlsx")
    assert template.status_code == 200 and template.headers["content-type"].startswith("application/vnd.openxml")
    wb = openpyxl.load_workbook(io.BytesIO(template.content), read_only=True)
    assert [c for c in next(wb.worksheets[0].iter_rows(values_only=True))] == ["用户名", "姓名", "手机号码", "角色", "工作区域"]
    assert ("章水镇" in str(list(wb["区域"].iter_rows(values_only=True)))) and "330203101201" in str(
        list(wb["区域"].iter_rows(values_only=True)))
    preview = _upload(con, xlsx(ROWS))
    assert preview.status_code == 200, preview.text[-2000:]
    assert preview.text.count('data-testid="create"') == 5 and con.store.user_by_username("zhangsan") is None
    content = re.search(r'name="content" value="([^"]+)"', preview.text)
    assert content
    applied = con.c.post("/staff/admin/users/import", data={"csrf": csrf(preview.text), "action": "apply",
                                                            "content": content.group(1)},
                         files={"none": ("", b"", "application/octet-stream")})
    assert applied.status_code == 200 and 'id="import-done"' in applied.text, applied.text[-2000:]
    assert applied.headers["cache-control"] == "no-store"
    link = re.search(r'href="data:[^;]+;base64,([^"]+)"', applied.text)
    assert link
    sheet = openpyxl.load_workbook(io.BytesIO(base64.b64decode(link.group(1))), read_only=True).worksheets[0]
    passwords = {r[0]: r[2] for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] and r[2]}
    assert set(passwords) == {"zhangsan", "lisi", "wangwu", "zhaoliu", "qianqi"}
    u = con.store.user_by_username("wangwu")
    assert u is not None and con.store.password_must_change(u.id)
    assert accounts.verify_password(passwords["wangwu"], con.store.password_hash(u.id) or "")
    # Applying the same file again creates nobody: the passwords are never offered again.
    again = con.c.post("/staff/admin/users/import", data={"csrf": csrf(preview.text), "action": "apply",
                                                          "content": content.group(1)},
                       files={"none": ("", b"", "application/octet-stream")})
    assert again.status_code == 200 and "data:" not in again.text
    # Bad rows: a 400 page listing each problem in Chinese, nothing written.
    bad = _upload(con, xlsx([["x1", "某", "", "村长", "杖锡村"]]))
    assert bad.status_code == 400 and "未知角色" in bad.text and 'id="import-apply"' not in bad.text
    assert con.store.user_by_username("x1") is None


def test_the_import_needs_an_admin_and_the_csrf_token(con: Console) -> None:
    assert con.login("staff1").status_code == 303
    assert con.c.get("/staff/admin/users/template.xlsx").status_code == 403
    page = con.c.get("/staff/")
    r = con.c.post("/staff/admin/users/import", data={"csrf": csrf(page.text), "action": "apply",
                                                      "content": base64.b64encode(xlsx(ROWS[:1])).decode()},
                   files={"none": ("", b"", "application/octet-stream")})
    assert r.status_code == 403 and con.store.user_by_username("zhangsan") is None
    con.c.cookies.clear()
    assert con.login("admin").status_code == 303
    r = con.c.post("/staff/admin/users/import", data={"csrf": "0" * 64, "action": "apply",
                                                      "content": base64.b64encode(xlsx(ROWS[:1])).decode()},
                   files={"none": ("", b"", "application/octet-stream")})
    assert r.status_code == 403 and con.store.user_by_username("zhangsan") is None
