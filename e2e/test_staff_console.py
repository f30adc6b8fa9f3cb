"""The staff console end to end (issue 6): worker1 records a matter on the phone and syncs; staff1,
on a desktop browser, triages it and dispatches it to agent1; agent1's pull contains it; the agent
resolves it; staff1 closes it; the dashboard figures move. Along the way: a form without its CSRF
token is refused, a hostile title renders as text, the .xlsx export reads back, screenshots are kept.
"""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import openpyxl
from playwright.sync_api import Browser, BrowserContext, Page, expect

from .conftest import Server
from .helpers import api, db_ro, login, pull_all, record_matter, sync_now, wait_first_sync, watch_errors

XSS = "<img src=x onerror=alert(1)>"


def staff_page(browser: Browser) -> tuple[BrowserContext, Page, list[str]]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return ctx, page, dialogs


def staff_login(page: Page, url: str, username: str = "staff1") -> None:
    page.goto(url + "/staff/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill("demo")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("h1")).to_have_text("一屏观全域")


def figure(page: Page, name: str) -> str:
    return page.locator(f"#{name}").inner_text().strip()


def test_staff_morning(browser: Browser, context: BrowserContext, page: Page, fresh_server: Server,
                       artifacts: Path) -> None:
    server = fresh_server
    tag = uuid.uuid4().hex[:6]
    title = f"{XSS} 路灯不亮 {tag}"

    # staff1 at the service centre, first thing: the dashboard as it stands
    sctx, spage, dialogs = staff_page(browser)
    staff_login(spage, server.url)
    before = {k: figure(spage, k) for k in ("collected", "resolved", "resolution-rate")}

    # worker1, on the phone: a matter recorded at a household and synced
    errors = watch_errors(page)
    login(page, server.url, "worker1")
    wait_first_sync(page)
    page.get_by_test_id("household-row").first.click()
    matter_id = record_matter(page, title, "村口到小学的路灯坏了三盏，晚上学生回家不安全。")
    sync_now(page)
    assert errors == []

    # staff1 sees it come in
    spage.reload()
    assert int(figure(spage, "collected")) == int(before["collected"]) + 1
    spage.screenshot(path=str(artifacts / "staff-dashboard.png"), full_page=True)

    spage.locator("#nav-intake").click()
    row = spage.get_by_test_id("matter-row").filter(has_text=tag)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(XSS)                 # the hostile title shows as text
    assert spage.locator("img[src=x]").count() == 0
    row.get_by_role("link").click()
    expect(spage.locator("#matter-title")).to_have_text(title)
    assert spage.locator("img[src=x]").count() == 0

    db = db_ro(server)
    agent_id = db.execute("SELECT id FROM users WHERE username = 'agent1'").fetchone()[0]
    staff_id = db.execute("SELECT id FROM users WHERE username = 'staff1'").fetchone()[0]
    form = spage.locator("#triage-form")
    form.get_by_test_id("category").select_option("proxy.social_insurance_registration")
    form.get_by_test_id("assignee").select_option(agent_id)
    form.locator("textarea[name=note]").fill("请代办员三天内联系群众")

    # the same form posted without its CSRF token is refused, and changes nothing
    spage.evaluate("() => { const f = document.querySelector('#triage-form'); "
                   "f.querySelector('input[name=csrf]').value = ''; }")
    form.get_by_test_id("accept").click()
    expect(spage.locator("h1")).to_have_text("无权访问")
    assert "CSRF" in spage.locator(".error").inner_text()
    assert db.execute("SELECT status FROM matters WHERE id = ?", (matter_id,)).fetchone()[0] == "submitted"

    spage.goto(f"{server.url}/staff/matters/{matter_id}")
    form = spage.locator("#triage-form")
    form.get_by_test_id("category").select_option("proxy.social_insurance_registration")
    form.get_by_test_id("assignee").select_option(agent_id)
    form.get_by_test_id("accept").click()
    expect(spage.locator("#flash")).to_contain_text("已受理")
    expect(spage.locator(".badges .badge").first).to_have_text("已派单")
    expect(spage.locator("#f-line")).to_have_text("社保")
    expect(spage.get_by_test_id("event")).to_have_count(3)
    spage.screenshot(path=str(artifacts / "staff-matter.png"), full_page=True)

    # agent1's phone gets it by pull, with who did what
    snap = pull_all(server, "agent1")
    m = snap[("matters", matter_id)]
    assert m["status"] == "assigned" and m["assignee_id"] == agent_id and m["line"] == "shebao"
    events = [d for (c, _), d in snap.items() if c == "matter_events" and d["matter_id"] == matter_id]
    assert sorted((e["kind"], e.get("to")) for e in events) == [("assign", None), ("status", "accepted"),
                                                                ("status", "assigned")]
    assert {e["actor_id"] for e in events} == {staff_id}

    # the agent does the work (from the phone's API) and reports it resolved
    with api(server, "agent1") as c:
        for frm, to in (("assigned", "in_progress"), ("in_progress", "resolved")):
            r = c.post("/sync/push", json={"protocol": 1, "mutations": [{
                "mid": str(uuid.uuid4()), "collection": "matter_events", "id": str(uuid.uuid4()), "op": "upsert",
                "base": 0, "at": "2026-11-23T10:00:00+08:00",
                "fields": {"matter_id": matter_id, "kind": "status", "from": frm, "to": to,
                           "note": "已帮群众办好" if to == "resolved" else ""}}]})
            assert r.json()["results"][0]["status"] == "applied", r.text

    # staff1 verifies and closes it (销号)
    spage.goto(f"{server.url}/staff/matters/{matter_id}")
    expect(spage.locator(".badges .badge").first).to_have_text("已办结")
    spage.get_by_test_id("move-note").fill("电话回访核实，群众满意")
    spage.get_by_test_id("move-closed").click()
    expect(spage.locator("#flash")).to_contain_text("状态已更新")
    expect(spage.locator(".badges .badge").first).to_have_text("已销号")
    assert db.execute("SELECT status FROM matters WHERE id = ?", (matter_id,)).fetchone()[0] == "closed"

    # the dashboard moved: one more collected, one more resolved
    spage.goto(server.url + "/staff/")
    after = {k: figure(spage, k) for k in ("collected", "resolved", "resolution-rate")}
    assert int(after["collected"]) == int(before["collected"]) + 1
    assert int(after["resolved"]) == int(before["resolved"]) + 1
    assert after["resolution-rate"] != before["resolution-rate"]

    # the three lists, exported to Excel, read back
    spage.goto(server.url + "/staff/reports/lists?start=2026-11-01&end=2026-12-31")
    with spage.expect_download() as dl:
        spage.locator("#export-xlsx").click()
    data = Path(dl.value.path()).read_bytes()
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["问题清单", "落实清单", "责任清单"]
    problem = list(wb["问题清单"].iter_rows(values_only=True))
    assert problem[1][:5] == ("序号", "工单编号", "反映时间", "村 / 网格", "户主")
    ours = [r for r in problem[2:] if r[7] == title]
    assert len(ours) == 1 and ours[0][10] == "已销号" and re.fullmatch(r"\d{4}-\d{6}", ours[0][1])
    measure = [r for r in wb["落实清单"].iter_rows(values_only=True) if r[2] == title]
    assert measure and measure[0][3] == "已帮群众办好"                 # what was done, not the 销号 note
    owner = [r for r in wb["责任清单"].iter_rows(values_only=True) if r[2] == title]
    assert owner and owner[0][3] == "社保" and owner[0][5]          # line and owner filled

    # the English switch
    spage.goto(server.url + "/staff/")
    spage.get_by_role("link", name="English").click()
    expect(spage.locator("h1")).to_have_text("The whole area at a glance")
    spage.screenshot(path=str(artifacts / "staff-dashboard-en.png"), full_page=True)

    assert dialogs == [], dialogs
    sctx.close()
    db.close()


def test_dashboard_charts_and_map(browser: Browser, server: Server, artifacts: Path) -> None:
    """一屏观全域 in Chromium (issue 14): the four charts and the map render, a layer toggles with CSS
    alone, a bar opens a list of as many rows, a dot opens its dossier or matter; no script errors,
    nothing refused by the content security policy."""
    sctx, spage, _ = staff_page(browser)
    refused: list[str] = []
    spage.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    errors = watch_errors(spage)
    staff_login(spage, server.url)
    spage.goto(server.url + "/staff/?start=2026-01-01&end=2026-11-20")
    for chart in ("chart-category", "chart-line", "chart-village", "chart-month"):
        expect(spage.locator(f"svg#{chart}")).to_be_visible()
        assert spage.locator(f"svg#{chart} a.bar").count() > 0, chart
    houses = spage.locator("svg#map .layer-households a.dot")
    assert houses.count() > 1000                         # the demo town, a dot per household
    expect(spage.locator("svg#map .outline-labels text", has_text="杖锡村")).to_have_count(1)
    spage.screenshot(path=str(artifacts / "staff-dashboard-charts.png"), full_page=True)

    # the households layer off and on again: a checkbox and CSS, no script
    spage.locator("label[for=layer-households]").click()
    expect(spage.locator("svg#map .layer-households")).to_be_hidden()
    expect(spage.locator("svg#map .layer-matters")).to_be_visible()
    spage.locator("label[for=layer-households]").click()
    expect(spage.locator("svg#map .layer-households")).to_be_visible()

    # a bar opens the list of what it counts
    bar = spage.locator("svg#chart-village a.bar").first
    n = bar.get_attribute("data-n")
    bar.click()
    expect(spage.locator("h1 #total")).to_have_text(str(n))

    # a dot of an open matter opens the matter
    spage.go_back()
    spage.locator("svg#map .layer-matters a.dot").first.click()
    expect(spage).to_have_url(re.compile(r"/staff/matters/[0-9a-f-]{36}$"))
    expect(spage.locator("#matter-title")).to_be_visible()

    spage.goto(server.url + "/staff/lang?to=en&next=/staff/")
    expect(spage.locator("#charts")).to_have_text("Matters by category, line, village and month")
    expect(spage.locator("#map-title")).to_have_count(1)
    spage.goto(server.url + "/staff/lang?to=zh&next=/staff/")
    assert errors == [] and refused == []
    sctx.close()
