"""Grids (and 片) with their 网格长 and 网格员 from an .xlsx (issue 14, docs/onboarding.md §2):
created through the engine once, users' areas extended, every bad row reported with nothing
written, the template, the CLI and the admin page with its scope."""

from __future__ import annotations

import io
import re
from typing import Any

import openpyxl
import pytest
import xlsxwriter

from server import cli
from server.imports.areas import import_areas
from server.imports.grids import import_grids, template_xlsx
from sync import accounts, engine
from sync.store import SQLiteStore

from .conftest import PASSWORD, Town, password_hash
from .test_import_areas import SAMPLE, Browser, web  # noqa: F401  (the fixture)

HEADER = ["村（社区）代码或路径", "片区（可选）", "网格名称", "网格长用户名", "网格员用户名"]


def sheet(*rows: list[Any], header: list[str] = HEADER) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = book.add_worksheet()
    for r, row in enumerate([header, *rows]):
        for c, value in enumerate(row):
            ws.write(r, c, value)
    book.close()
    return buf.getvalue()


def grids_of(store: SQLiteStore, parent: str) -> dict[str, dict[str, Any]]:
    return {d["name"]: {**d, "id": aid} for aid, d in store.live_records("areas") if d.get("parent_id") == parent}


def areas_of(store: SQLiteStore, username: str) -> list[str]:
    u = store.user_by_username(username)
    assert u is not None
    return list(u.data["areas"])


@pytest.fixture
def county(town: Town) -> Town:
    """The fixture town inside 海曙区's real tree (its areas found by name and given their codes)."""
    assert import_areas(town.store, SAMPLE.read_bytes()).applied
    return town


def test_grids_and_patches_are_created_and_people_get_their_grids(county: Town) -> None:
    t, store = county, county.store
    accounts.create_user(store, "worker4", PASSWORD, "grid_worker", [], password_hash=password_hash())
    before_w1 = areas_of(store, "worker1")
    assert not any(c.data and c.data.get("name") == "杖锡村第三网格" for c in _pull(t, "w1").values())
    out = import_grids(store, sheet(
        ["章水镇/杖锡村", "", "杖锡村第三网格", "worker1", "worker2、worker4"],
        ["330203106260", "上岙片", "上岙第一网格", "worker4", ""],
        [330203106260, "上岙片", "上岙第二网格", "", "worker4, worker2"],     # a code typed as a number
        ["章水镇/杖锡村", "", "杖锡村第一网格", "", "worker4"],                  # already there
        ["李家坑村村委会", "", "李家坑村第二网格", "worker3", ""],               # the official name
    ))
    assert out.ok and out.applied, out.problems
    v1 = t.ids["v1"]
    children = grids_of(store, v1)
    assert children["杖锡村第三网格"]["level"] == "grid" and children["上岙片"]["level"] == "patch"
    in_patch = grids_of(store, children["上岙片"]["id"])
    assert set(in_patch) == {"上岙第一网格", "上岙第二网格"} and all(g["level"] == "grid" for g in in_patch.values())
    assert [g["name"] for g in grids_of(store, t.ids["v1"]).values()].count("杖锡村第一网格") == 1
    assert out.unchanged == 1 and len(out.grids_created) == 4 and out.patches_created == ["杖锡村 / 上岙片"]
    third = children["杖锡村第三网格"]["id"]
    # the listed users' areas include their grids; what they had stays
    assert areas_of(store, "worker1") == before_w1 + [third]
    assert set(areas_of(store, "worker4")) == {third, in_patch["上岙第一网格"]["id"], in_patch["上岙第二网格"]["id"],
                                               t.ids["g1"]}
    assert set(areas_of(store, "worker2")) == {t.ids["g1"], third, in_patch["上岙第二网格"]["id"]}
    assert sorted(out.users_updated) == ["worker1", "worker2", "worker3", "worker4"]
    # through the engine: the new grid reaches worker1's phone as an ordinary change
    assert _pull(t, "w1")[("areas", third)].data["name"] == "杖锡村第三网格"


def _pull(t: Town, who: str) -> dict[tuple[str, str], Any]:
    """Everything a phone of ``who`` receives, signed in again (the scope is the user's areas now)."""
    user = t.store.get("users", t.actors[who].user_id)
    assert user is not None
    login = accounts.login(t.store, user.data["username"],
                           PASSWORD, "new phone")
    actor = accounts.authenticate(t.store, login.token)
    changes: dict[tuple[str, str], Any] = {}
    cursor = None
    while True:
        page = engine.pull(t.store, actor, cursor, 500)
        changes.update({(c.collection, c.id): c for c in page.changes})
        cursor = page.cursor
        if not page.more:
            return changes


def test_a_second_run_writes_nothing(county: Town) -> None:
    store = county.store
    data = sheet(["章水镇/杖锡村", "北片", "杖锡村第三网格", "worker1", "worker2"])
    assert import_grids(store, data).applied
    seq, users = store.current_seq(), {u: areas_of(store, u) for u in ("worker1", "worker2")}
    out = import_grids(store, data)
    assert out.ok and not out.applied and out.grids_created == [] and out.users_updated == [] and out.unchanged == 1
    assert store.current_seq() == seq and {u: areas_of(store, u) for u in users} == users


def test_every_bad_row_is_reported_and_nothing_is_written(county: Town) -> None:
    store = county.store
    seq, before = store.current_seq(), {u: areas_of(store, u) for u in ("worker1", "worker2", "worker3")}
    out = import_grids(store, sheet(
        ["章水镇/杖锡村", "", "杖锡村第三网格", "worker1", "worker2"],          # 2: fine alone
        ["章水镇/无此村", "", "某网格", "", ""],                                 # 3: no such village
        ["330203106000", "", "镇网格", "", ""],                                  # 4: a town, not a village
        ["999999999999", "", "码网格", "", ""],                                  # 5: no such code
        ["章水镇/杖锡村", "", "", "worker1", ""],                                # 6: no grid name
        ["章水镇/杖锡村", "", "杖锡村第四网格", "nobody", ""],                   # 7: unknown user
        ["章水镇/杖锡村", "", "杖锡村第五网格", "", "worker2、staff1"],          # 8: wrong role
        ["章水镇/杖锡村", "", "杖锡村第三网格", "", ""],                         # 9: same grid again
        ["章水镇/杖锡村", "", "杖锡村第六网格", "worker1、worker2", ""],         # 10: two heads
        ["章水镇/杖锡村", "东片", "杖锡村第一网格", "", ""],                     # 11: exists, not in a 片
    ))
    assert not out.applied
    got = {p.row: (p.column, p.value, p.reason) for p in out.problems}
    assert sorted(got) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert got[3][:2] == ("村（社区）代码或路径", "章水镇/无此村") and "找不到" in got[3][2]
    assert "村或社区之下" in got[4][2] and "镇" in got[4][2]
    assert "999999999999" in got[5][2]
    assert got[6][0] == "网格名称" and "不能为空" in got[6][2]
    assert got[7][:2] == ("网格长用户名", "nobody") and "没有该用户名" in got[7][2]
    assert got[8][:2] == ("网格员用户名", "staff1") and "镇工作人员" in got[8][2]
    assert got[9][0] == "网格名称" and "第 2 行" in got[9][2]
    assert "一名网格长" in got[10][2]
    assert "上级不能更改" in got[11][2]
    assert store.current_seq() == seq and {u: areas_of(store, u) for u in before} == before


def test_a_sheet_without_its_columns_or_not_a_workbook(county: Town) -> None:
    store = county.store
    out = import_grids(store, sheet(["杖锡村", "x"], header=["村", "备注"]))
    assert [(p.row, "网格名称" in p.reason) for p in out.problems] == [(1, True)]
    out = import_grids(store, b"PK\x03\x04 not really a workbook")
    assert [p.row for p in out.problems] == [0] and "xlsx" in out.problems[0].reason
    out = import_grids(store, sheet())
    assert [p.row for p in out.problems] == [0]


def test_the_template_round_trips(county: Town, tmp_path: Any) -> None:
    """The template a county downloads, filled in with openpyxl (as Excel would save it), imports."""
    path = tmp_path / "grids.xlsx"
    path.write_bytes(template_xlsx())
    book = openpyxl.load_workbook(path)
    ws = book.worksheets[0]
    assert [c.value for c in ws[1]] == HEADER
    assert book.sheetnames == ["网格", "填写说明"]
    ws.append(["330203106245", None, "李家坑村第二网格", "worker3", None])
    book.save(path)
    book.close()
    out = import_grids(county.store, path.read_bytes())
    assert out.applied and out.grids_created == ["李家坑村 / 李家坑村第二网格"]


def test_the_cli(county: Town, db: str, tmp_path: Any, capsys: Any) -> None:
    """On the test's database (the town's store is on it): dry run, apply, a bad file with --report."""
    store = county.store
    good = tmp_path / "grids.xlsx"
    good.write_bytes(sheet(["章水镇/杖锡村", "", "杖锡村第三网格", "worker1", ""]))
    seq = store.current_seq()
    assert cli.main(["import", "grids", str(good), "--db", db, "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out and store.current_seq() == seq
    assert cli.main(["import", "grids", str(good), "--db", db]) == 0
    assert "grids created 1" in capsys.readouterr().out
    assert "杖锡村第三网格" in grids_of(store, county.ids["v1"])
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(sheet(["章水镇/杖锡村", "", "杖锡村第九网格", "nobody", ""]))
    report = tmp_path / "problems.xlsx"
    seq = store.current_seq()
    assert cli.main(["import", "grids", str(bad), "--db", db, "--report", str(report)]) == 1
    assert "第 2 行 [网格长用户名] “nobody”" in capsys.readouterr().err
    assert report.exists() and store.current_seq() == seq


# -- the admin page ------------------------------------------------------------------------------

def test_the_admin_page_imports_grids_and_offers_the_template(web: Browser) -> None:
    t, store = web.town, web.town.store
    web.login("admin")
    page = web.c.get("/staff/admin/areas")
    assert 'action="/staff/admin/grids/import"' in page.text and "/staff/admin/grids/template.xlsx" in page.text
    r = web.c.get("/staff/admin/grids/template.xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert r.content == template_xlsx()
    data = sheet(["章水镇/杖锡村", "", "杖锡村第三网格", "worker1", "worker2"])
    seq = store.current_seq()
    r = web.upload("/staff/admin/grids/import", data, mode="check", name="grids.xlsx")
    assert r.status_code == 200 and "检查通过" in r.text and store.current_seq() == seq
    r = web.upload("/staff/admin/grids/import", data, name="grids.xlsx")
    assert r.status_code == 200 and "已导入" in r.text and "杖锡村 / 杖锡村第三网格" in r.text
    third = grids_of(store, t.ids["v1"])["杖锡村第三网格"]["id"]
    assert third in areas_of(store, "worker1")
    assert "导入网格" in web.c.get("/staff/audit").text


def test_the_admin_page_keeps_an_area_admin_in_their_areas(web: Browser) -> None:
    t, store = web.town, web.town.store
    accounts.create_user(store, "lijiakeng", PASSWORD, "admin", [t.ids["v2"]], password_hash=password_hash())
    seq = store.current_seq()
    web.login("staff1")
    r = web.upload("/staff/admin/grids/import", sheet(["章水镇/李家坑村", "", "新网格", "", ""]), name="g.xlsx")
    assert r.status_code == 403
    web.c.cookies.clear()
    web.login("lijiakeng")
    # 杖锡村 and its people are not theirs; 李家坑村 is
    r = web.upload("/staff/admin/grids/import", sheet(["章水镇/杖锡村", "", "杖锡村第三网格", "", ""],
                                                      ["章水镇/李家坑村", "", "李家坑村第二网格", "", "worker1"]),
                   name="g.xlsx")
    assert r.status_code == 200 and "未写入任何数据" in r.text
    assert re.search(r"<td>2</td><td>村（社区）代码或路径</td><td>章水镇/杖锡村</td><td>该村（社区）超出您管辖的区域", r.text)
    assert re.search(r"<td>3</td><td>网格员用户名</td><td>worker1</td>", r.text)
    assert store.current_seq() == seq
    r = web.upload("/staff/admin/grids/import", sheet(["章水镇/李家坑村", "", "李家坑村第二网格", "", "worker3"]),
                   name="g.xlsx")
    assert "已导入" in r.text and "李家坑村第二网格" in grids_of(store, t.ids["v2"])
