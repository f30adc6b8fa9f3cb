"""The console's supervision tools in a real browser on the demo town (issue 14): the second page of a
filtered list, a matter opened from it and acted on returns to that page; ticked matters supervised
in bulk, each one's outcome shown; the filtered list exported."""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
from playwright.sync_api import Browser, expect

from .conftest import Server
from .test_staff_console import staff_login, staff_page


def test_bulk_supervision_and_the_way_back_to_the_list(browser: Browser, fresh_server: Server,
                                                       artifacts: Path) -> None:
    server = fresh_server
    ctx, page, dialogs = staff_page(browser)
    staff_login(page, server.url)

    # every matter, oldest first, second page
    page.goto(server.url + "/staff/matters?sort=raised_asc")
    total = int(page.locator("#total").inner_text())
    assert total > 50
    page.get_by_role("link", name="下一页").click()
    expect(page.locator(".pager span")).to_have_text(f"2 / {(total + 49) // 50}")
    listed = page.url
    row = page.get_by_test_id("matter-row").first
    number = row.locator("small.number").inner_text()
    row.get_by_role("link").first.click()
    expect(page.locator("#matter-number")).to_have_text(number)
    page.locator("textarea[name=note]").last.fill("已电话联系群众，明天上门。")
    page.get_by_role("button", name="添加备注").click()
    expect(page.locator("#flash")).to_contain_text("已添加备注")
    assert page.url.startswith(listed) and "page=2" in page.url        # back on the same list page

    # tick two matters of this page and supervise them at once
    boxes = page.locator("input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    bulk = page.locator("#bulk")
    bulk.locator("select[name=action]").select_option("supervise")
    bulk.locator("input[name=note]").fill("请本周内办结并报告。")
    bulk.get_by_role("button", name="执行").click()
    expect(page.locator("h1")).to_have_text("批量督办")
    expect(page.locator("#bulk-summary")).to_have_text("完成 2 / 2")
    page.screenshot(path=str(artifacts / "staff-bulk.png"), full_page=True)
    page.locator("#bulk-back").click()
    assert "page=2" in page.url and "sort=raised_asc" in page.url

    # the searched number finds its matter; the filtered list downloads as a workbook
    page.goto(server.url + "/staff/matters?q=" + number)
    expect(page.get_by_test_id("matter-row")).to_have_count(1)
    page.goto(server.url + "/staff/matters?supervised=1")
    shown = int(page.locator("#total").inner_text())
    with page.expect_download() as dl:
        page.locator("#export-xlsx").click()
    ws = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes())).worksheets[0]
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    assert len(rows) == shown and all(re.fullmatch(r"\d{4}-\d{6}", r[0]) for r in rows)
    assert dialogs == []
    ctx.close()
