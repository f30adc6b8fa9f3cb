"""The household roster import page end to end (issue 14, step 3): staff1 downloads the template,
fills it in, uploads it, reads the preview and the problem report, corrects the file, imports it; the
grid's worker then pulls the new households as ordinary changes."""

from __future__ import annotations

import io
import random
import uuid
from datetime import date, timedelta
from pathlib import Path

import openpyxl
from playwright.sync_api import Browser, expect

from .conftest import Server
from .helpers import pull_all
from .test_staff_console import staff_login, staff_page

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GRID = "章水镇/杖锡村/第一网格"


def id_number(rng: random.Random, year: int, male: bool) -> str:
    born = date(year, 1, 1) + timedelta(days=rng.randint(0, 364))
    body = f"330205{born:%Y%m%d}{rng.randint(0, 99) * 10 + rng.choice((1, 3, 5) if male else (0, 2, 4)):03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS)) % 11]


def test_import_a_roster_from_the_template(browser: Browser, fresh_server: Server, tmp_path: Path,
                                           artifacts: Path) -> None:
    server = fresh_server
    tag = uuid.uuid4().hex[:4]
    ctx, page, _ = staff_page(browser)
    staff_login(page, server.url)
    page.goto(server.url + "/staff/admin/households-import")
    expect(page.locator("h1")).to_have_text("导入住户花名册")

    with page.expect_download() as dl:
        page.locator("#template-link").click()
    wb = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert wb.sheetnames == ["住户花名册", "填写说明", "网格"]
    assert "海曙区/章水镇/杖锡村/杖锡村第一网格" in [r[1] for r in wb["网格"].iter_rows(min_row=2, values_only=True)]
    ws = wb["住户花名册"]
    rng = random.Random(14)
    rows = [
        ["1", GRID, f"杖锡村新村{tag}号", "郑国强", "郑国强", "户主", "男", id_number(rng, 1961, True), None,
         "13805741111", "在家居住", "党员", "", "低保户", ""],
        ["1", GRID, f"杖锡村新村{tag}号", "郑国强", "陈美华", "配偶", "女", id_number(rng, 1963, False), None,
         "1380574111", "在家居住", "", "", "", ""],                      # row 3: a mobile a digit short
        ["2", GRID, f"杖锡村新村{tag}-2号", "郑阿公", "郑阿公", "户主", "男", id_number(rng, 1940, True), None,
         "", "在家居住", "高龄", "", "独居老人", ""],
    ]
    for r in rows:
        ws.append(r)
    first = tmp_path / "花名册.xlsx"
    wb.save(first)

    page.locator("input[type=file]").set_input_files(str(first))
    page.get_by_role("button", name="上传并预览").click()
    expect(page.get_by_test_id("problems")).to_have_text("1")
    expect(page.get_by_test_id("households-new")).to_have_text("2")
    expect(page.get_by_test_id("problem-row")).to_have_count(1)
    expect(page.get_by_test_id("problem-row")).to_contain_text("电话号码格式不正确")
    expect(page.locator("#import-apply")).to_have_count(0)          # no import while the file has a problem
    with page.expect_download() as dl:
        page.locator("#report-link").click()
    report = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert list(report["问题"].iter_rows(min_row=2, values_only=True))[0][:3] == (3, "联系电话", "1380574111")
    page.screenshot(path=str(artifacts / "roster-import-problems.png"), full_page=True)

    ws.cell(row=3, column=10).value = "13805742222"
    fixed = tmp_path / "花名册-改.xlsx"
    wb.save(fixed)
    page.locator("input[type=file]").set_input_files(str(fixed))
    page.get_by_role("button", name="上传并预览").click()
    expect(page.get_by_test_id("problems")).to_have_text("0")
    expect(page.get_by_test_id("residents-new")).to_have_text("3")
    page.get_by_role("button", name="确认导入").click()
    expect(page.locator("#import-done")).to_be_visible()
    expect(page.get_by_test_id("households-new")).to_have_text("2")
    page.screenshot(path=str(artifacts / "roster-import-done.png"), full_page=True)

    # worker1, whose grid it is, receives the households and residents as ordinary changes
    snapshot = pull_all(server, "worker1")
    mine = {d["address"]: d for (c, _), d in snapshot.items() if c == "households" and tag in d.get("address", "")}
    assert sorted(mine) == [f"杖锡村新村{tag}-2号", f"杖锡村新村{tag}号"]
    assert mine[f"杖锡村新村{tag}号"]["tags"] == ["低保户"] and mine[f"杖锡村新村{tag}号"]["members_count"] == 2
    names = {d["name"] for (c, _), d in snapshot.items() if c == "residents"}
    assert {"郑国强", "陈美华", "郑阿公"} <= names

    # the same file again: nothing to import
    page.locator("input[type=file]").set_input_files(str(fixed))
    page.get_by_role("button", name="上传并预览").click()
    expect(page.locator("#import-nothing")).to_be_visible()
    ctx.close()
