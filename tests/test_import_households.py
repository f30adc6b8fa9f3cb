"""The household roster import (issue 14, step 3): template, synonyms, validation by row, all or
none through the engine, idempotent re-import, field updates, conflicts with offline edits, scope."""

from __future__ import annotations

import io
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from server.cli import main as cli
from server.imports import households as imp
from server.staff.core import console_actor
from sync import accounts, engine
from sync.scope import Actor

from .conftest import PASSWORD, Town, password_hash

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
G1 = "章水镇/杖锡村/第一网格"     # the fixture's 杖锡村第一网格, by path
G3 = "李家坑村网格"
TEMPLATE_HEADERS = ["户号", "网格", "地址", "户主姓名", "姓名", "与户主关系", "性别", "身份证号", "出生年份", "联系电话",
                    "居住状态", "标签", "备注", "户标签", "户备注"]


def id_number(rng: random.Random, year: int, male: bool) -> str:
    """A valid 18-digit resident ID (330203 = 海曙区): the check character by ISO 7064 MOD 11-2."""
    born = date(year, 1, 1).toordinal() + rng.randint(0, 364)
    seq = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
    return checked(f"330203{date.fromordinal(born):%Y%m%d}{seq:03d}")


def checked(body: str) -> str:
    """17 digits and their check character (ISO 7064 MOD 11-2, as GB 11643 gives it)."""
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS)) % 11]


def xlsx(rows: list[list[Any]], headers: list[str] = TEMPLATE_HEADERS, title: list[str] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    if title:
        ws.append(title)
    ws.append(headers)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def family(rng: random.Random, no: str, address: str, head: str, grid: str = G1, phone: str = "13805740001",
           tags: str = "") -> list[list[Any]]:
    """A head, a spouse and a child, as a roster lists them."""
    return [
        [no, grid, address, head, head, "户主", "男", id_number(rng, 1956, True), None, phone, "在家居住", "党员", "",
         tags, ""],
        [no, grid, address, head, head[0] + "秀英", "配偶", "女", id_number(rng, 1958, False), None, "", "在家居住", "慢性病",
         "高血压", "", ""],
        [no, grid, address, head, head[0] + "建军", "子", "男", id_number(rng, 1983, True), None, "13905740002", "外出",
         "外出务工", "在宁波打工", "", ""],
    ]


def live(town: Town, coll: str) -> list[tuple[str, dict[str, Any]]]:
    return town.store.live_records(coll)


def staff_actor(town: Town, username: str, areas: list[str]) -> Actor:
    accounts.create_user(town.store, username, PASSWORD, "staff", areas, password_hash=password_hash())
    u = town.store.user_by_username(username)
    assert u is not None
    return console_actor(u.id, "staff", areas)


@pytest.fixture
def staff(town: Town) -> Actor:
    """Town staff of 章水镇, acting through the console."""
    return console_actor(town.actors["staff"].user_id, "staff", [town.ids["town"]])


def test_the_template_round_trips(town: Town, staff: Actor) -> None:
    raw = imp.template_bytes(town.store, staff)
    wb = load_workbook(io.BytesIO(raw))
    assert wb.sheetnames == ["住户花名册", "填写说明", "网格"]
    ws = wb["住户花名册"]
    assert [c.value for c in ws[1]] == TEMPLATE_HEADERS
    assert sorted(r[1] for r in wb["网格"].iter_rows(min_row=2, values_only=True)) == [
        "海曙区/章水镇/李家坑村/李家坑村网格", "海曙区/章水镇/杖锡村/杖锡村第一网格", "海曙区/章水镇/杖锡村/杖锡村第二网格"]
    rng = random.Random(1)
    for row in family(rng, "1", "杖锡村上岙3号", "王大伯", tags="独居老人、低保户") + family(rng, "2", "李家坑村8号", "李阿公", G3):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    filled = buf.getvalue()

    dry = imp.check(town.store, staff, filled)
    assert dry.problems == []
    assert (dry.households_new, dry.residents_new, dry.households_updated, dry.residents_updated) == (2, 6, 0, 0)
    assert live(town, "households") == []          # a dry run writes nothing

    done = imp.apply(town.store, staff, filled)
    assert done.applied and done.households_new == 2
    hs = {d["head_name"]: (hid, d) for hid, d in live(town, "households")}
    hid, wang = hs["王大伯"]
    assert wang["grid_id"] == town.ids["g1"] and wang["address"] == "杖锡村上岙3号"
    assert wang["tags"] == ["低保户", "独居老人"] and wang["phone"] == "13805740001" and wang["members_count"] == 3
    people = {d["name"]: d for _, d in town.store.residents_of(hid)}
    assert people["王建军"]["residence"] == "away" and people["王建军"]["tags"] == ["外出务工"]
    assert people["王秀英"]["gender"] == "female" and people["王秀英"]["birth_year"] == 1958   # from the ID number
    assert people["王大伯"]["relation"] == "户主" and people["王秀英"]["notes"] == "高血压"
    # written by the importing user, through the engine: the grid's worker receives them by pull
    assert {h.created_by for h in town.store.get_many("households", [hid]).values()} == {staff.user_id}
    pulled = town.pull_all("w1")
    assert ("households", hid) in pulled
    assert sum(1 for c, _ in pulled if c == "residents") == 3
    assert ("households", hs["李阿公"][0]) not in pulled      # another village's household


def test_household_tags_from_any_row_and_from_a_persons_tags(town: Town, staff: Actor) -> None:
    rng = random.Random(12)
    rows = family(rng, "1", "杖锡村上岙3号", "王大伯")
    rows[0][11] = "党员、低保户"        # the head's 标签, with a household's tag among them
    rows[2][13] = "留守儿童"            # 户标签 on the son's row
    imp.apply(town.store, staff, xlsx(rows))
    ((hid, h),) = live(town, "households")
    assert h["tags"] == ["低保户", "留守儿童"]
    people = {d["name"]: d for _, d in town.store.residents_of(hid)}
    assert people["王大伯"]["tags"] == ["党员"]
    assert imp.check(town.store, staff, xlsx(rows)).mutations == []


def test_synonyms_and_a_sheet_of_one_row_per_household(town: Town, staff: Actor) -> None:
    rng = random.Random(2)
    head_id = id_number(rng, 1950, True)
    raw = xlsx([["杖锡村下岙1号", "黄阿公", "138 0574 0003", head_id, "章水镇/杖锡村/第二网格", "山区农户、独居老人"],
                ["杖锡村下岙2号", "黄阿婆", "0574-88301234", "", "杖锡村第二网格", ""]],
               headers=["住址", "户主", "手机号码", "公民身份号码（18位）", "所属网格", "标签"],
               title=["杖锡村住户花名册（2026年）"])
    res = imp.apply(town.store, staff, raw)
    assert (res.households_new, res.residents_new) == (2, 2)
    hs = {d["head_name"]: (hid, d) for hid, d in live(town, "households")}
    hid, d = hs["黄阿公"]
    assert d["grid_id"] == town.ids["g2"] and d["phone"] == "13805740003" and d["tags"] == ["山区农户", "独居老人"]
    (_, head), = town.store.residents_of(hid)
    assert head == head | {"name": "黄阿公", "relation": "户主", "id_number": head_id, "gender": "male",
                           "birth_year": 1950}
    assert hs["黄阿婆"][1]["phone"] == "0574-88301234"


def test_the_check_character_is_gb_11643s() -> None:
    assert imp.id_number_problem("11010519491231002X") is None      # the standard's own example
    assert imp.id_number_problem("11010519491231002x".upper()) is None
    assert "校验位" in (imp.id_number_problem("110105194912310021") or "")
    assert imp.id_number_problem("110105491231002") is None         # the old 15 digits: no check character
    assert "出生日期" in (imp.id_number_problem(checked("11010520991231002")) or "")
    assert "18位" in (imp.id_number_problem("1101051949123100") or "")


def test_cells_as_excel_keeps_them_inline_strings_dates_and_numbers(town: Town, staff: Actor, tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "inline.xlsx"
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})   # inline strings, as streaming writers do
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, ["网格", "地址", "户主姓名", "出生日期", "联系电话", "性别"])
    ws.write_row(1, 0, [G1, "杖锡村上岙1号", "周阿公"])
    ws.write_datetime(1, 3, __import__("datetime").datetime(1948, 5, 6), wb.add_format({"num_format": "yyyy-mm-dd"}))
    ws.write_number(1, 4, 13805740001)
    ws.write_string(1, 5, "男")
    wb.close()
    res = imp.apply(town.store, staff, path)
    assert res.problems == [] and res.residents_new == 1
    ((_, head),) = town.store.live_records("residents")
    assert (head["birth_year"], head["phone"], head["gender"]) == (1948, "13805740001", "male")


def test_a_file_that_is_no_roster_is_one_clear_refusal(town: Town, staff: Actor,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    with pytest.raises(imp.UnreadableFile, match="无法读取该文件"):
        imp.check(town.store, staff, b"name,phone\n")
    with pytest.raises(imp.UnreadableFile, match="没有找到住户花名册的表头"):
        imp.check(town.store, staff, xlsx([["a", "b"]], headers=["甲", "乙"]))
    monkeypatch.setattr(imp, "MAX_UNZIPPED", 100_000)     # (200 MB in production)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/sharedStrings.xml", b"\0" * 100_001)   # a hundred bytes, zipped
    with pytest.raises(imp.UnreadableFile, match="解压后过大"):
        imp.check(town.store, staff, bomb.getvalue())


def test_every_kind_of_problem_is_reported_by_row_and_nothing_is_written(town: Town, staff: Actor) -> None:
    rng = random.Random(3)
    good = id_number(rng, 1970, True)
    # a resident already in the database, in a household of 李家坑村
    other = town.household("w3", "g3", address="李家坑村1号", head_name="陈阿公")
    taken = id_number(rng, 1940, True)
    assert town.push1("w3", town.mut("residents", "0b5c3b7e-9d1f-4c52-8a56-5f1b2d3c4e5f",
                                     {"household_id": other, "name": "陈阿公", "id_number": taken})).status == "applied"
    bad_check = good[:17] + ("0" if good[17] != "0" else "1")
    rows: list[list[Any]] = [
        ["1", G1, "上岙1号", "甲", "甲", "户主", "", bad_check, None, "", "", "", "", "", ""],              # 2 check digit
        ["2", G1, "上岙2号", "乙", "乙", "户主", "", checked("33020320230230123"), None, "", "", "", "", "", ""],   # 3 birth date
        ["3", G1, "上岙3号", "丙", "丙", "户主", "", "", None, "12345", "", "", "", "", ""],                # 4 phone
        ["4", "章水镇/杖锡村/第九网格", "上岙4号", "丁", "丁", "户主", "", "", None, "", "", "", "", "", ""],   # 5 no grid
        ["5", G1, "上岙5号", "戊", "戊", "户主", "", good, None, "", "", "", "", "", ""],
        ["6", G1, "上岙6号", "己", "己", "户主", "", good, None, "", "", "", "", "", ""],                  # 7 dup in file
        ["7", G1, "上岙7号", "庚", "庚", "户主", "", taken, None, "", "", "", "", "", ""],                 # 8 dup in db
        ["8", G1, "", "辛", "辛", "户主", "", "", None, "", "", "", "", "", ""],                           # 9 required
        ["9", G1, "上岙9号", "壬", "", "子", "", "", None, "", "", "", "", "", ""],                         # 10 required
        ["10", G1, "上岙10号", "癸", "癸", "户主", "", float(good), None, "", "", "", "", "", ""],          # 11 number
        ["11", G1, "上岙11号", "子", "子", "户主", "女", id_number(rng, 1960, True), 1961, "", "", "", "", "", ""],  # 12
        ["12", G1, "上岙12号", "丑", "丑", "户主", "", "", None, "", "住院", "", "", "", ""],                # 13 residence
        ["13", G1, "上岙5号", "戊", "戊", "户主", "", "", None, "", "", "", "", "", ""],                    # 14 same household
    ]
    raw = xlsx(rows)
    res = imp.check(town.store, staff, raw)
    got = {(p.row, p.column): p.reason for p in res.problems}
    assert "校验位" in got[(2, "身份证号")]
    assert "出生日期" in got[(3, "身份证号")]
    assert "电话号码" in got[(4, "联系电话")]
    assert "找不到该网格" in got[(5, "网格")]
    assert got[(7, "身份证号")] == "身份证号与第6行重复。"
    assert got[(8, "身份证号")] == "该身份证号已登记在另一户中（海曙区/章水镇/李家坑村/李家坑村网格 李家坑村1号 户主陈阿公）。"
    assert "必须填写" in got[(9, "地址")] and "必须填写" in got[(10, "姓名")]
    assert "存成了数字" in got[(11, "身份证号")]
    assert "不一致" in got[(12, "性别")] and "不一致" in got[(12, "出生年份")]
    assert "居住状态" in got[(13, "居住状态")]
    assert "重复登记" in got[(14, "地址")]
    assert all(p.value is not None and p.reason for p in res.problems)
    # and each in English, for the console in English
    assert [p.reason for p in res.problems if imp.say(p.reason, "en") == p.reason] == []
    assert imp.say(got[(7, "身份证号")], "en") == "The same ID number as row 6."
    with pytest.raises(imp.ImportRefused, match="未导入任何数据"):
        imp.apply(town.store, staff, raw)
    assert [d["head_name"] for _, d in live(town, "households")] == ["陈阿公"]

    # the report: the same problems, by row, in an .xlsx
    wb = load_workbook(io.BytesIO(imp.report_bytes(res)))
    problems = list(wb["问题"].iter_rows(values_only=True))
    assert problems[0] == ("行号", "列", "值", "问题")
    assert [(r[0], r[1], r[3]) for r in problems[1:]] == [(p.row, p.column, p.reason) for p in res.problems]
    summary = dict(wb["汇总"].iter_rows(values_only=True))
    assert summary["问题"] == len(res.problems) and summary["数据行"] == 13


def test_a_village_staff_cannot_import_into_another_villages_grid(town: Town) -> None:
    village2 = staff_actor(town, "staff_v2", [town.ids["v2"]])
    rng = random.Random(4)
    raw = xlsx(family(rng, "1", "杖锡村上岙3号", "王大伯") + family(rng, "2", "李家坑村8号", "李阿公", G3))
    res = imp.check(town.store, village2, raw)
    assert {(p.row, p.column, p.reason) for p in res.problems} == {
        (r, "网格", "该网格不在您管辖的区域内。") for r in (2, 3, 4)}
    with pytest.raises(imp.ImportRefused):
        imp.apply(town.store, village2, raw)
    assert live(town, "households") == []
    # their own village imports; the template lists their grids only
    assert imp.apply(town.store, village2, xlsx(family(rng, "2", "李家坑村8号", "李阿公", G3))).households_new == 1
    # a person registered in 杖锡村 is not shown to them, only said to be registered elsewhere
    imp.apply(town.store, console_actor(town.actors["staff"].user_id, "staff", [town.ids["town"]]),
              xlsx(family(random.Random(4), "1", "杖锡村上岙3号", "王大伯")))
    moved = family(random.Random(4), "3", "李家坑村9号", "王大伯", G3)
    res = imp.check(town.store, village2, xlsx(moved))
    assert {(p.row, p.reason) for p in res.problems} == {
        (2, "该户主的身份证号已登记在您管辖范围以外的住户中，请与上级核实。"),
        *((r, "该身份证号已登记在您管辖范围以外的住户中，请与上级核实。") for r in (3, 4))}
    assert "杖锡村" not in repr(res.problems)
    grids = load_workbook(io.BytesIO(imp.template_bytes(town.store, village2)))["网格"]
    assert [r[1] for r in grids.iter_rows(min_row=2, values_only=True)] == ["海曙区/章水镇/李家坑村/李家坑村网格"]


def test_re_importing_changes_nothing_and_a_changed_cell_is_one_field_update(town: Town, staff: Actor) -> None:
    rng = random.Random(5)
    rows = family(rng, "1", "杖锡村上岙3号", "王大伯") + family(rng, "2", "杖锡村上岙4号", "王阿公")
    imp.apply(town.store, staff, xlsx(rows))
    page = engine.pull(town.store, town.actors["w1"], None, 500)
    while page.more:
        page = engine.pull(town.store, town.actors["w1"], page.cursor, 500)
    seq = town.store.current_seq()

    again = imp.check(town.store, staff, xlsx(rows))
    assert again.problems == [] and again.mutations == []
    assert (again.households_unchanged, again.residents_unchanged) == (2, 6)
    imp.apply(town.store, staff, xlsx(rows))
    assert town.store.current_seq() == seq       # nothing pushed at all

    rows[4][9] = "13605740999"                   # 王秀英's phone … (a resident of the second household)
    rows[4][11] = "慢性病、残疾人"                 # … and her tags
    changed = imp.check(town.store, staff, xlsx(rows))
    assert (changed.residents_updated, changed.residents_unchanged, changed.households_unchanged) == (1, 5, 2)
    (m,) = changed.mutations
    assert m["collection"] == "residents" and m["fields"] == {"phone": "13605740999",
                                                              "tags": {"add": ["残疾人"], "remove": []}}
    imp.apply(town.store, staff, xlsx(rows))
    later = engine.pull(town.store, town.actors["w1"], page.cursor, 500)
    assert [(c.collection, c.data["name"], c.data["phone"], c.data["tags"]) for c in later.changes] == [
        ("residents", "王秀英", "13605740999", ["慢性病", "残疾人"])]


def test_an_offline_edit_of_an_imported_household_becomes_a_conflict(town: Town, staff: Actor) -> None:
    rng = random.Random(6)
    rows = family(rng, "1", "杖锡村上岙3号", "王大伯")
    imp.apply(town.store, staff, xlsx(rows))
    ((hid, _),) = live(town, "households")
    seen = town.version("households", hid)                    # what worker1's phone pulled
    rows[0][9] = "13805749999"                               # the roster says the head's phone changed
    imp.apply(town.store, staff, xlsx(rows))
    assert town.store.get("households", hid).data["phone"] == "13805749999"   # type: ignore[union-attr]
    # meanwhile, offline, worker1 wrote another number on the card, from the version it had
    r = town.push1("w1", town.mut("households", hid, {"phone": "13805748888"}, base=seen))
    assert r.status == "conflict" and r.conflict_id
    conflict = town.store.get("conflicts", r.conflict_id)
    assert conflict is not None and conflict.data["fields"]["phone"]["current"] == "13805749999"
    assert conflict.data["fields"]["phone"]["incoming"] == "13805748888"
    assert staff.user_id in conflict.data["involved"]


def test_an_existing_household_is_matched_by_address_and_head_then_by_id_number(town: Town, staff: Actor) -> None:
    hid = town.household("w1", "g1", address="杖锡村上岙3号", head_name="王大伯", phone="13805740001")
    rng = random.Random(7)
    rows = family(rng, "1", "杖锡村上岙3号", "王大伯")
    res = imp.apply(town.store, staff, xlsx(rows))
    assert (res.households_new, res.households_updated, res.residents_new) == (0, 1, 3)   # members_count
    assert [h for h, _ in live(town, "households")] == [hid]
    # the head's ID number now finds the household even when the roster spells the address anew
    rows = [[*r[:2], "杖锡村上岙三号", *r[3:]] for r in rows]
    res = imp.check(town.store, staff, xlsx(rows))
    assert (res.households_updated, res.residents_unchanged) == (1, 3)
    assert res.mutations[0]["id"] == hid and res.mutations[0]["fields"] == {"address": "杖锡村上岙三号"}
    # a newborn the grid worker recorded on the phone is no change the roster undoes (it lacks her)
    v = town.version("households", hid)
    assert town.push1("w1", town.mut("residents", "5d0c1b7e-9d1f-4c52-8a56-5f1b2d3c4e60",
                                     {"household_id": hid, "name": "王小妹", "relation": "孙女"})).status == "applied"
    assert town.push1("w1", town.mut("households", hid, {"members_count": 4}, base=v)).status == "applied"
    rows = [[*r[:2], "杖锡村上岙3号", *r[3:]] for r in rows]
    res = imp.check(town.store, staff, xlsx(rows))
    assert res.mutations == [] and (res.households_unchanged, res.residents_unchanged) == (1, 3)


def test_a_failure_midway_leaves_nothing(town: Town, staff: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(8)
    rows = [r for n in range(200) for r in family(rng, str(n), f"杖锡村上岙{n}号", f"王{n}")]   # 800 mutations
    pushes: list[int] = []
    real = engine.push

    def push_then_fail(store: Any, actor: Any, req: Any, now: Any = None) -> Any:
        pushes.append(len(req.mutations))
        if len(pushes) == 2:
            raise OSError("disk full")
        return real(store, actor, req, now)

    monkeypatch.setattr(imp.engine, "push", push_then_fail)
    seq = town.store.current_seq()
    with pytest.raises(OSError):
        imp.apply(town.store, staff, xlsx(rows))
    assert pushes == [500, 300]
    assert live(town, "households") == [] and live(town, "residents") == []
    assert town.store.current_seq() == seq
    assert not {c for c, _ in town.pull_all("w1")} & {"households", "residents"}

    # a mutation the engine rejects in the second batch (a grid that does not exist) undoes the first too
    monkeypatch.setattr(imp.engine, "push", real)
    calls = []

    def reject_second(store: Any, actor: Any, req: Any, now: Any = None) -> Any:
        calls.append(1)
        if len(calls) == 2:
            req.mutations[0].fields["grid_id"] = "00000000-0000-4000-8000-000000000000"
        return real(store, actor, req, now)

    monkeypatch.setattr(imp.engine, "push", reject_second)
    with pytest.raises(imp.ImportRefused, match="已全部撤销"):
        imp.apply(town.store, staff, xlsx(rows))
    assert live(town, "households") == [] and live(town, "conflicts") == []
    monkeypatch.setattr(imp.engine, "push", real)
    assert imp.apply(town.store, staff, xlsx(rows)).households_new == 200


def test_the_command_line_dry_run_apply_report_and_template(town: Town, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    db = town.store.path
    rng = random.Random(9)
    roster = tmp_path / "roster.xlsx"
    roster.write_bytes(xlsx(family(rng, "1", "杖锡村上岙3号", "王大伯") + [
        ["2", G1, "上岙2号", "乙", "乙", "户主", "", "", None, "12345", "", "", "", "", ""]]))
    report = tmp_path / "report.xlsx"
    assert cli(["import", "households", str(roster), "--db", db, "--as", "staff1", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "新增住户 2" in out and "第5行 联系电话 '12345'" in out
    assert list(load_workbook(report)["问题"].iter_rows(min_row=2, values_only=True))[0][:2] == (5, "联系电话")
    assert cli(["import", "households", str(roster), "--db", db, "--apply"]) == 1
    assert live(town, "households") == []
    roster.write_bytes(xlsx(family(rng, "1", "杖锡村上岙3号", "王大伯")))
    assert cli(["import", "households", str(roster), "--db", db, "--as", "staff1", "--apply"]) == 0
    assert len(live(town, "households")) == 1
    assert cli(["import", "households", str(roster), "--db", db, "--as", "worker3"]) == 1   # not their grid
    assert "不在您管辖的区域内" in capsys.readouterr().out
    template = tmp_path / "template.xlsx"
    assert cli(["import", "template", "households", str(template), "--db", db, "--as", "worker3"]) == 0
    assert [r[1] for r in load_workbook(template)["网格"].iter_rows(min_row=2, values_only=True)] == [
        "海曙区/章水镇/李家坑村/李家坑村网格"]


# -- the console page ---------------------------------------------------------------------------

@pytest.fixture
def console(tmp_path: Path) -> Any:
    from litestar.testing import TestClient

    from server.app import create_app
    from server.settings import Settings

    from . import backend
    from .conftest import build_town

    db = backend.new_db(tmp_path)
    s = backend.open_store(db)
    s.migrate()
    t = build_town(s)
    app = create_app(Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs"),
                                                          pwa_dir=str(tmp_path / "no-pwa"))))
    with TestClient(app, base_url="http://testserver.local") as c:
        yield c, t, tmp_path
    s.close()


def _csrf(html: str) -> str:
    import re

    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:2000]
    return m.group(1)


def _login(c: Any, username: str) -> None:
    page = c.get("/staff/login")
    r = c.post("/staff/login", data={"username": username, "password": PASSWORD, "csrf": _csrf(page.text)},
               follow_redirects=False)
    assert r.status_code == 303


def _upload(c: Any, raw: bytes, name: str = "花名册.xlsx") -> Any:
    page = c.get("/staff/admin/households-import")
    assert page.status_code == 200
    return c.post("/staff/admin/households-import", data={"csrf": _csrf(page.text)},
                  files={"file": (name, raw, imp.XLSX_TYPE)})


def test_the_page_previews_applies_and_reports(console: Any) -> None:
    import re

    c, town, tmp = console
    _login(c, "staff1")
    template = c.get("/staff/admin/households-import/template")
    assert template.status_code == 200 and template.headers["content-type"].startswith(imp.XLSX_TYPE)
    assert load_workbook(io.BytesIO(template.content)).sheetnames[0] == "住户花名册"

    rng = random.Random(10)
    bad = family(rng, "1", "杖锡村上岙3号", "王大伯") + [
        ["2", G1, "上岙2号", "乙", "乙", "户主", "", "", None, "12345", "", "", "", "", ""]]
    page = _upload(c, xlsx(bad))
    assert page.status_code == 200
    assert re.search(r'data-testid="households-new">2<', page.text) and 'data-testid="problems">1<' in page.text
    assert "电话号码格式不正确" in page.text and 'id="import-apply"' not in page.text
    c.cookies.set("gb_lang", "en", domain="testserver.local", path="/staff")
    english = c.get("/staff/admin/households-import/report/none")
    assert english.status_code == 404
    english = _upload(c, xlsx(bad))
    assert "Not a phone number (a mobile has 11 digits" in english.text and "Preview" in english.text
    c.cookies.set("gb_lang", "zh", domain="testserver.local", path="/staff")
    token = re.search(r"/report/([0-9a-f]{64})", page.text).group(1)   # type: ignore[union-attr]
    report = c.get(f"/staff/admin/households-import/report/{token}")
    rows = list(load_workbook(io.BytesIO(report.content))["问题"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1], r[2]) for r in rows] == [(5, "联系电话", "12345")]
    # an apply of the file with problems is refused, and says so
    refused = c.post("/staff/admin/households-import/apply", data={"csrf": _csrf(page.text), "token": token})
    assert refused.status_code == 409 and "未导入任何数据" in refused.text
    assert live(town, "households") == []

    good = family(rng, "1", "杖锡村上岙3号", "王大伯")
    page = _upload(c, xlsx(good))
    assert 'id="import-apply"' in page.text
    token = re.search(r'name="token" value="([0-9a-f]{64})"', page.text).group(1)   # type: ignore[union-attr]
    done = c.post("/staff/admin/households-import/apply",
                  data={"csrf": _csrf(page.text), "token": token, "name": "花名册.xlsx"})
    assert done.status_code == 200 and 'id="import-done"' in done.text
    assert 'data-testid="residents-new">3<' in done.text
    assert len(live(town, "households")) == 1
    # applied once: the file is gone, a second apply finds nothing to apply
    again = c.post("/staff/admin/households-import/apply", data={"csrf": _csrf(page.text), "token": token})
    assert again.status_code == 404
    # the same file again: nothing to import
    assert 'id="import-nothing"' in _upload(c, xlsx(good)).text
    # what waits for an apply stays bounded: a user's three latest uploads
    for n in range(5):
        _upload(c, xlsx(family(rng, str(n), f"杖锡村下岙{n}号", f"陈{n}")))
    assert len(list((tmp / "blobs.imports").glob("*.xlsx"))) == 3
    actions = [e.action for e in town.store.audit_entries(action_prefix="import.")]
    assert "import.households" in actions and "import.households.check" in actions


def test_the_page_keeps_each_users_upload_and_scope(console: Any) -> None:
    import re

    c, town, _ = console
    accounts.create_user(town.store, "staff_v2", PASSWORD, "staff", [town.ids["v2"]], password_hash=password_hash())
    _login(c, "staff_v2")
    page = _upload(c, xlsx(family(random.Random(11), "1", "杖锡村上岙3号", "王大伯")))
    assert "该网格不在您管辖的区域内" in page.text
    token = re.search(r"/report/([0-9a-f]{64})", page.text).group(1)   # type: ignore[union-attr]
    # another user cannot use someone's upload
    c.post("/staff/logout", data={"csrf": _csrf(page.text)})
    _login(c, "staff1")
    home = c.get("/staff/admin/households-import")
    assert c.get(f"/staff/admin/households-import/report/{token}").status_code == 404
    r = c.post("/staff/admin/households-import/apply", data={"csrf": _csrf(home.text), "token": token})
    assert r.status_code == 404 and live(town, "households") == []
    # without a CSRF token nothing is uploaded; a file that is no workbook is a clear refusal
    r = c.post("/staff/admin/households-import", files={"file": ("x.xlsx", b"x", imp.XLSX_TYPE)})
    assert r.status_code == 403
    r = _upload(c, b"not a workbook")
    assert r.status_code == 400 and "无法读取该文件" in r.text
