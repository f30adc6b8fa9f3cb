"""Areas from the national code list (issue 14, docs/onboarding.md §1): 海曙区's real file, its
encodings and headers, idempotence, renames through the engine, every bad row reported with
nothing written, the CLI and the admin page with its scope."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from litestar.testing import TestClient

from server import cli
from server.app import create_app
from server.imports.areas import import_areas, short_name
from server.settings import Settings
from sync import accounts, engine
from sync.store import SQLiteStore, open_store

from . import backend
from .conftest import PASSWORD, Town, build_town, new_id, password_hash

SAMPLE = Path(__file__).resolve().parent.parent / "docs" / "samples" / "haishu-330203.csv"


def sample_rows() -> list[tuple[str, str]]:
    with SAMPLE.open(encoding="utf-8") as f:
        return [(r[0], r[1]) for r in list(csv.reader(f))[1:] if r]


def to_csv(rows: list[tuple[str, str]], header: tuple[str, str] = ("统计用区划代码", "名称")) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def areas_by_code(store: SQLiteStore) -> dict[str, dict[str, Any]]:
    """Every live area that has a code, with its parent's code."""
    recs = dict(store.live_records("areas"))
    out = {}
    for aid, d in recs.items():
        if d.get("code"):
            parent = recs.get(d.get("parent_id") or "")
            out[d["code"]] = {**d, "id": aid, "parent_code": parent.get("code") if parent else None}
    return out


def test_the_sample_file_builds_haishu(store: SQLiteStore) -> None:
    out = import_areas(store, SAMPLE.read_bytes())
    assert out.ok and out.applied, out.problems
    rows = sample_rows()
    areas = areas_by_code(store)
    assert len(store.live_records("areas")) == len(rows) == 298
    assert set(areas) == {code for code, _ in rows}
    counties = [a for a in areas.values() if a["level"] == "county"]
    towns = [a for a in areas.values() if a["level"] in ("town", "street")]
    villages = [a for a in areas.values() if a["level"] in ("village", "community")]
    assert (len(counties), len(towns), len(villages)) == (1, 17, 280)
    assert counties[0]["name"] == "海曙区" and counties[0]["code"] == "330203000000" and not counties[0].get("parent_id")
    for code, official in rows:
        a = areas[code]
        assert a["official_name"] == official
        # the parent from the code's structure: 2+2+2 county, +3 town, +3 village
        if code.endswith("000000"):
            assert a["parent_code"] is None
        elif code.endswith("000"):
            assert a["parent_code"] == code[:6] + "000000" and a["level"] in ("town", "street")
            assert a["level"] == ("street" if official.endswith("街道") else "town")
        else:
            assert a["parent_code"] == code[:9] + "000"
            assert a["level"] == ("village" if official.endswith(("村委会", "村")) else "community")
    assert areas["330203106256"]["name"] == "杜岙村" and areas["330203106256"]["official_name"] == "杜岙村村委会"
    assert areas["330203102005"]["name"] == "秋实社区" and areas["330203102005"]["level"] == "community"
    assert areas["330203001003"]["name"] == "万安社区"              # already short: kept as it is
    assert areas["330203106000"]["name"] == "章水镇" and areas["330203106000"]["level"] == "town"
    assert areas["330203001000"]["level"] == "street"
    assert areas["330203106260"]["name"] == "杖锡村" and areas["330203106260"]["parent_code"] == "330203106000"
    # the tree the engine sees: every village under its town under the county
    tree = engine.area_tree(store)
    assert len(tree.subtree(counties[0]["id"])) == 298
    assert [a for a in tree.parent if tree.parent[a] is None] == [counties[0]["id"]]


@pytest.mark.parametrize("official,short", [
    ("杜岙村村委会", "杜岙村"), ("秋实社区居委会", "秋实社区"), ("大路村委会", "大路村"), ("樟村村委会", "樟村"),
    ("凤岙居委会", "凤岙居委会"), ("章水镇", "章水镇"), ("宝善社区", "宝善社区"), ("某某村村民委员会", "某某村")])
def test_short_names(official: str, short: str) -> None:
    assert short_name(official) == short


def _tree_of(store: SQLiteStore) -> dict[str, tuple[str, str, str | None]]:
    return {c: (a["name"], a["level"], a["parent_code"]) for c, a in areas_by_code(store).items()}


@pytest.mark.parametrize("variant", ["utf-8-sig", "gb18030", "english", "区划代码", "columns swapped"])
def test_encodings_and_headers(db: str, tmp_path: Any, variant: str) -> None:
    rows = sample_rows()
    if variant == "utf-8-sig":
        data = to_csv(rows).encode("utf-8-sig")
    elif variant == "gb18030":
        data = to_csv(rows).encode("gb18030")
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")        # really not UTF-8
    elif variant == "english":
        data = to_csv(rows, ("code", "name")).encode()
    elif variant == "区划代码":
        data = to_csv(rows, ("区划代码", "名称")).encode()
    else:
        data = to_csv([(n, c) for c, n in rows], ("名称", "代码")).encode()
    (tmp_path / "ref").mkdir()
    reference = open_store(backend.new_db(tmp_path / "ref"))
    reference.migrate()
    assert import_areas(reference, SAMPLE.read_bytes()).applied
    s = open_store(db)
    s.migrate()
    try:
        out = import_areas(s, data)
        assert out.ok and out.applied, out.problems
        assert _tree_of(s) == _tree_of(reference)
    finally:
        s.close()
        reference.close()


def test_a_second_run_writes_nothing(store: SQLiteStore) -> None:
    assert import_areas(store, SAMPLE.read_bytes()).applied
    seq, versions = store.current_seq(), store.record_versions("areas")
    shuffled = to_csv(list(reversed(sample_rows()))).encode("gb18030")   # another order, another encoding
    out = import_areas(store, shuffled)
    assert out.ok and not out.applied and out.created == [] and out.updated == [] and out.unchanged == 298
    assert store.current_seq() == seq and store.record_versions("areas") == versions


def _pull_from(town: Town, who: str, cursor: str | None) -> tuple[dict[tuple[str, str], Any], str]:
    changes: dict[tuple[str, str], Any] = {}
    while True:
        page = engine.pull(town.store, town.actors[who], cursor, 500)
        for c in page.changes:
            changes[(c.collection, c.id)] = c
        cursor = page.cursor
        if not page.more:
            return changes, cursor


def test_existing_areas_without_codes_are_matched_by_name_and_a_rename_reaches_the_phones(town: Town) -> None:
    """The town of the fixtures has no codes: 海曙区, 章水镇, 杖锡村 are found by name under the same
    parent (the short or the official name) and get their codes; nothing is made twice."""
    _, cursor = _pull_from(town, "w1", None)
    out = import_areas(town.store, SAMPLE.read_bytes())
    assert out.applied, out.problems
    assert sorted(out.updated) == ["李家坑村", "杖锡村", "海曙区", "章水镇"] and len(out.created) == 294
    names = [d["name"] for _, d in town.store.live_records("areas")]
    assert names.count("杖锡村") == names.count("章水镇") == names.count("海曙区") == 1
    v1 = town.store.get("areas", town.ids["v1"])
    assert v1 is not None and v1.data["code"] == "330203106260" and v1.data["official_name"] == "杖锡村村委会"
    assert v1.data["mountain"] is True     # what the import does not know stays as it was
    changes, cursor = _pull_from(town, "w1", cursor)
    assert changes[("areas", town.ids["v1"])].data["code"] == "330203106260"
    # 杖锡村 is renamed in the next edition of the list: an update through the engine, seen by a pull
    renamed = [(c, "杖溪村村委会" if c == "330203106260" else n) for c, n in sample_rows()]
    version = town.version("areas", town.ids["v1"])
    out = import_areas(town.store, to_csv(renamed).encode())
    assert out.applied and out.updated == ["杖锡村 → 杖溪村"] and out.created == []
    rec = town.store.get("areas", town.ids["v1"])
    assert rec is not None and rec.version > version
    assert (rec.data["name"], rec.data["official_name"]) == ("杖溪村", "杖溪村村委会")
    changes, _ = _pull_from(town, "w1", cursor)
    assert changes[("areas", town.ids["v1"])].data["name"] == "杖溪村"


def test_only_an_area_of_the_same_kind_is_found_by_name(town: Town) -> None:
    """A grid named like a village of the list, under the same town, is not that village."""
    grid = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    r = town.push1("admin", town.mut("areas", grid, {"parent_id": town.ids["town"], "level": "grid", "name": "樟村"}))
    assert r.status == "applied", r
    out = import_areas(town.store, SAMPLE.read_bytes())
    assert out.applied and "樟村" in out.created
    assert [d["level"] for _, d in town.store.live_records("areas") if d["name"] == "樟村"].count("village") == 1
    rec = town.store.get("areas", grid)
    assert rec is not None and rec.data.get("code") is None and rec.data["level"] == "grid"


def test_two_uncoded_areas_of_one_name_are_a_problem_not_a_guess(town: Town) -> None:
    r = town.push1("admin", town.mut("areas", new_id(), {"parent_id": town.ids["town"], "level": "village",
                                                        "name": "杖锡村村委会"}))
    assert r.status == "applied", r
    seq = town.store.current_seq()
    out = import_areas(town.store, SAMPLE.read_bytes())
    row = next(i for i, (code, _) in enumerate(sample_rows(), 2) if code == "330203106260")
    assert [(p.row, p.column, p.value) for p in out.problems] == [(row, "名称", "杖锡村村委会")]
    assert "2 个同名" in out.problems[0].reason and not out.applied and town.store.current_seq() == seq


@pytest.mark.parametrize("coded", [True, False])
def test_a_county_under_a_city_is_found_where_it_is(store: SQLiteStore, coded: bool) -> None:
    """A city's database holds 宁波市 above 海曙区: the county is found (by code, or by name) under
    its city, not made again as a root."""
    city, county = "0" * 8 + "-0000-4000-8000-" + "1" * 12, "0" * 8 + "-0000-4000-8000-" + "2" * 12
    accounts.create_user(store, "cityadmin", PASSWORD, "admin", [], password_hash=password_hash())
    actor = accounts.authenticate(store, accounts.login(store, "cityadmin", PASSWORD, "console").token)
    body = {"protocol": 1, "mutations": [
        {"mid": new_id(), "collection": "areas", "id": city, "op": "upsert", "base": 0, "at": "2026-11-01T08:00:00+08:00",
         "fields": {"level": "city", "name": "宁波市"}},
        {"mid": new_id(), "collection": "areas", "id": county, "op": "upsert", "base": 0, "at": "2026-11-01T08:00:00+08:00",
         "fields": {"level": "county", "name": "海曙区", "parent_id": city, **({"code": "330203000000"} if coded else {})}}]}
    results = engine.push(store, actor, json.dumps(body).encode()).results
    assert all(r.status == "applied" for r in results), results
    out = import_areas(store, SAMPLE.read_bytes())
    assert out.applied, out.problems
    assert [aid for aid, d in store.live_records("areas") if d["name"] == "海曙区"] == [county]
    assert areas_by_code(store)["330203106000"]["parent_id"] == county


def test_the_demo_town_is_found_by_its_codes(store: SQLiteStore) -> None:
    """The demo's areas carry their real codes: importing the county's list adds the rest of the
    county around them and changes none of them."""
    from server.demo import VILLAGES

    for v in VILLAGES:
        assert any(code == v.code and short_name(name) == v.name for code, name in sample_rows()), v
    t = build_town(store)
    fields = {"town": ("330203106000", "章水镇"), "v1": ("330203106260", "杖锡村村委会")}
    for key, (code, official) in fields.items():
        r = t.push1("admin", t.mut("areas", t.ids[key], {"code": code, "official_name": official},
                                  base=t.version("areas", t.ids[key])))
        assert r.status == "applied", r
    out = import_areas(store, SAMPLE.read_bytes())
    assert out.applied
    assert "章水镇" not in out.updated and "杖锡村" not in out.updated


BAD = [
    ("330203106000", "章水镇"),
    ("330203106260", "杖锡村村委会"),
    ("33020310626", "短代码村"),             # 11 digits
    ("33020310626X", "字母村"),              # not digits
    ("330203000001", "错位社区"),            # town 000 but village part not
    ("330203107001", "无上级社区"),          # its town 330203107000 is nowhere
    ("330203106260", "杖锡村村委会"),        # a duplicate
    ("330212001000", "外区街道"),            # 鄞州区: outside the file's county
    ("330203106245", ""),                   # no name
    ("330203000000", "海曙区"),
]


def test_every_bad_row_is_reported_and_nothing_is_written(store: SQLiteStore) -> None:
    seq = store.current_seq()
    out = import_areas(store, to_csv(BAD).encode())
    assert not out.applied
    got = {(p.row, p.column): (p.value, p.reason) for p in out.problems}
    assert sorted(got) == [(4, "统计用区划代码"), (5, "统计用区划代码"), (6, "统计用区划代码"), (7, "统计用区划代码"),
                           (8, "统计用区划代码"), (9, "统计用区划代码"), (10, "名称")]
    assert "12位数字" in got[(4, "统计用区划代码")][1] and got[(4, "统计用区划代码")][0] == "33020310626"
    assert "12位数字" in got[(5, "统计用区划代码")][1]
    assert "000" in got[(6, "统计用区划代码")][1]
    assert "330203107000" in got[(7, "统计用区划代码")][1] and "不在文件中" in got[(7, "统计用区划代码")][1]
    assert "重复" in got[(8, "统计用区划代码")][1] and "第 3 行" in got[(8, "统计用区划代码")][1]
    assert "不属于本文件的区县" in got[(9, "统计用区划代码")][1]
    assert "不能为空" in got[(10, "名称")][1]
    assert [p.row for p in out.problems] == sorted(p.row for p in out.problems)
    assert store.current_seq() == seq and store.live_records("areas") == []


def test_a_missing_header_or_an_unreadable_file_is_one_problem(store: SQLiteStore) -> None:
    out = import_areas(store, "编号,地名\n330203000000,海曙区\n".encode())
    assert [(p.row, "统计用区划代码" in p.reason) for p in out.problems] == [(1, True)]
    out = import_areas(store, b"")
    assert [p.row for p in out.problems] == [0]
    out = import_areas(store, bytes(range(128, 256)) * 3)   # neither UTF-8 nor GB18030 text
    assert len(out.problems) == 1 and not out.applied
    assert store.live_records("areas") == []


def test_a_village_file_finds_its_parents_in_the_database(store: SQLiteStore) -> None:
    """One town's villages alone, once the county and its towns are in: their parents come from the
    database; a village of a town neither in the file nor in the database is a problem."""
    rows = sample_rows()
    assert import_areas(store, to_csv([r for r in rows if r[0].endswith("000")]).encode()).applied
    zhangshui = [r for r in rows if r[0].startswith("330203106") and not r[0].endswith("000")]
    out = import_areas(store, to_csv(zhangshui).encode())
    assert out.applied and len(out.created) == len(zhangshui)


def test_a_write_the_engine_refuses_undoes_the_whole_import(store: SQLiteStore, monkeypatch: Any) -> None:
    """All or nothing through the engine too: the engine checks each write again as the importing
    user (here town staff, who may not write areas); its refusal undoes the batches pushed before
    and the refusal's own records (the rejected-mutation conflict, the push log)."""
    from server.imports import areas as area_import

    rows = sample_rows()
    assert import_areas(store, to_csv([r for r in rows if r[0].endswith("000")]).encode()).applied
    town = areas_by_code(store)["330203106000"]["id"]
    accounts.create_user(store, "townstaff", PASSWORD, "staff", [town], password_hash=password_hash())
    actor = accounts.authenticate(store, accounts.login(store, "townstaff", PASSWORD, "console").token)
    mine = [r for r in rows if r[0].startswith("330203106") and not r[0].endswith("000")]
    monkeypatch.setattr(area_import, "BATCH", 5)
    seq, count = store.current_seq(), len(store.live_records("areas"))
    with pytest.raises(area_import.ImportRefused, match="may not create areas"):
        import_areas(store, to_csv(mine).encode(), actor=actor)
    assert store.current_seq() == seq and len(store.live_records("areas")) == count
    assert store.live_records("conflicts") == []


def test_names_the_engine_would_refuse_are_problems_of_the_file(store: SQLiteStore) -> None:
    """The schema's rule for a name, not a second one: DEL (\x7f) is a control character to it."""
    out = import_areas(store, to_csv([("330203000000", "海曙区"), ("330203106000", "章水\x7f镇")]).encode())
    assert [(p.row, p.column) for p in out.problems] == [(3, "名称")] and not out.applied
    assert store.live_records("areas") == []


def test_the_cli(db: str, tmp_path: Any, capsys: Any) -> None:
    assert cli.main(["area", "import", str(SAMPLE), "--db", db, "--dry-run"]) == 0
    assert "would create 298" in capsys.readouterr().out
    s = open_store(db)
    s.migrate()
    try:
        assert s.live_records("areas") == []
        assert cli.main(["area", "import", str(SAMPLE), "--db", db]) == 0
        assert "created 298" in capsys.readouterr().out
        seq = s.current_seq()
        assert cli.main(["area", "import", str(SAMPLE), "--db", db]) == 0
        assert "created 0, updated 0, unchanged 298" in capsys.readouterr().out
        bad = tmp_path / "bad.csv"
        bad.write_text(to_csv(BAD), encoding="utf-8")
        report = tmp_path / "problems.xlsx"
        assert cli.main(["area", "import", str(bad), "--db", db, "--report", str(report)]) == 1
        err = capsys.readouterr().err
        assert "nothing was written" in err and "第 4 行 [统计用区划代码] “33020310626”：区划代码应为12位数字。" in err
        book = openpyxl.load_workbook(report, read_only=True)
        cells = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
        assert cells[0] == ["行号", "列", "值", "问题"] and cells[1][:3] == [4, "统计用区划代码", "33020310626"]
        assert s.current_seq() == seq
        assert cli.main(["area", "import", str(tmp_path / "none.csv"), "--db", db]) == 1
    finally:
        s.close()


def test_the_problem_report_keeps_a_formula_as_text() -> None:
    """A value from the file that looks like a formula is never one in the report."""
    from server.imports.report import Problem, problems_xlsx

    book = openpyxl.load_workbook(io.BytesIO(problems_xlsx([Problem(2, "代码", '=HYPERLINK("http://x","y")', "…")])))
    cell = book.worksheets[0]["C2"]
    assert cell.value == '=HYPERLINK("http://x","y")' and cell.data_type == "s"
    book.close()


# -- the admin page ------------------------------------------------------------------------------

class Browser:
    def __init__(self, client: Any, town: Town) -> None:
        self.c, self.town = client, town

    def login(self, username: str) -> None:
        page = self.c.get("/staff/login")
        r = self.c.post("/staff/login", data={"username": username, "password": PASSWORD, "csrf": csrf(page.text)},
                        follow_redirects=False)
        assert r.status_code == 303, r.text

    def upload(self, path: str, data: bytes, mode: str = "apply", name: str = "areas.csv",
               follow_redirects: bool = True) -> Any:
        page = self.c.get("/staff/admin/areas")
        # staff have no admin page to take a token from: the dashboard's (a valid one) must still be refused
        token = csrf(page.text if page.status_code == 200 else self.c.get("/staff/").text)
        return self.c.post(path, data={"csrf": token, "mode": mode}, files={"file": (name, data, "text/csv")},
                           follow_redirects=follow_redirects)


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:2000]
    return m.group(1)


@pytest.fixture
def web(tmp_path: Any) -> Any:
    db = backend.new_db(tmp_path)
    s = backend.open_store(db)
    s.migrate()
    t = build_town(s)
    app = create_app(Settings(db=db, **backend.beside_db(tmp_path, blob_dir=str(tmp_path / "blobs"),
                                                          pwa_dir=str(tmp_path / "no-pwa"))))
    with TestClient(app, base_url="http://testserver.local") as c:
        yield Browser(c, t)
    s.close()


def test_the_admin_page_checks_then_imports(web: Browser) -> None:
    store = web.town.store
    web.login("admin")
    page = web.c.get("/staff/admin/areas")
    assert 'action="/staff/admin/areas/import"' in page.text and 'enctype="multipart/form-data"' in page.text
    seq = store.current_seq()
    r = web.upload("/staff/admin/areas/import", SAMPLE.read_bytes(), mode="check")
    assert r.status_code == 200 and "检查通过" in r.text and store.current_seq() == seq
    r = web.upload("/staff/admin/areas/import", SAMPLE.read_bytes())
    assert r.status_code == 200 and "已导入" in r.text
    assert len(store.live_records("areas")) == 298 + 3     # the fixture's three grids stay
    assert re.search(r">杜岙村</td><td>[^<]+</td><td>330203106256</td>", web.c.get("/staff/admin/areas").text)
    assert "导入区划" in web.c.get("/staff/audit").text
    r = web.upload("/staff/admin/areas/import", to_csv(BAD).encode("gb18030"))
    assert r.status_code == 200 and "未写入任何数据" in r.text
    assert re.search(r"<td>6</td><td>统计用区划代码</td><td>330203000001</td>", r.text)
    # the same problems as a workbook (a check: nothing written), to fix the file by
    r = web.upload("/staff/admin/areas/import", to_csv(BAD).encode(), mode="report")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    cells = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    assert cells[0] == ["行号", "列", "值", "问题"] and [c[0] for c in cells[1:]] == [4, 5, 6, 7, 8, 9, 10]
    assert cells[3][2] == "330203000001"
    xss = "<img src=x onerror=alert(1)>"
    r = web.upload("/staff/admin/areas/import", to_csv([("330203106999", xss), ("x" + xss, "村")]).encode())
    assert xss not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    r = web.upload("/staff/admin/areas/import", b"", follow_redirects=False)
    assert r.status_code == 303 and "msg=invalid_form" in r.headers["location"]


def test_the_admin_page_is_refused_to_staff_and_outside_an_admins_areas(web: Browser) -> None:
    t = web.town
    store = t.store
    accounts.create_user(store, "townadmin", PASSWORD, "admin", [t.ids["v1"]], password_hash=password_hash())
    seq = store.current_seq()
    web.login("staff1")
    r = web.upload("/staff/admin/areas/import", SAMPLE.read_bytes())
    assert r.status_code == 403 and store.current_seq() == seq
    # an admin of 杖锡村 alone: the county's towns and villages are outside their areas
    web.c.cookies.clear()
    web.login("townadmin")
    r = web.upload("/staff/admin/areas/import", SAMPLE.read_bytes())
    assert r.status_code == 200 and "超出您管辖的区域" in r.text and "未写入任何数据" in r.text
    assert store.current_seq() == seq
