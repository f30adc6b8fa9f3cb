"""The proxy chain end to end (issue 5), in Chromium, offline where it is offline.

worker1, offline on a visit, records a proxy matter for an elderly resident and delegates it to
agent1. agent1 syncs, then in the village with no signal records the resident's authorisation with
a signature drawn on the screen, receives the materials, takes the matter on, waits two days for a
missing piece (the deadline clock stops) and gets it. In town, online: hands the materials to the
window, submits, records the result, takes the ID card back (the window keeps the old card and the
authorisation letter). Back in the village, offline: returns the ID card, records the delivery with
the resident's signature and the resident's satisfaction. The phone syncs in a village office where
photo uploads fail: the records arrive first and everyone else sees "signature uploading", never
"missing"; then the signature follows. staff1 closes it (销号) through the API, and the matter
leaves agent1's phone.

Days passing offline are simulated by moving the app's clock correction (the server offset it
learnt at its last sync) back by whole days: events then carry those earlier times, as a phone
offline for days would.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from sync.proxy import add_workdays, workdays_between

from .conftest import Server
from .helpers import (api, app_eval, fmt, local_record, msgs, pull_all, record_visit, records, wait_first_sync,
                      wait_service_worker, wait_synced, wait_until, watch_errors, login)

CST = timezone(timedelta(hours=8))
DAY_MS = 86_400_000


def local_day(at: str) -> date:
    return datetime.fromisoformat(at).astimezone(CST).date()


def agent_login(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    zh = msgs(page)
    page.get_by_label(zh["login.username"]).fill("agent1")
    page.get_by_label(zh["login.password"]).fill("demo")
    page.get_by_role("button", name=zh["login.submit"]).click()
    page.get_by_test_id("proxy-row").first.wait_for(state="visible", timeout=60_000)


_SIGNATURES = [0]


def sign(page: Page) -> None:
    """A finger's signature on the pad: three strokes, a little different every time (two identical
    drawings would be one blob, already on the server)."""
    _SIGNATURES[0] += 1
    wobble = _SIGNATURES[0] * 5
    pad = page.get_by_test_id("signature-pad").last
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    x0, y0 = box["x"], box["y"]
    for stroke in range(3):
        page.mouse.move(x0 + 20 + stroke * 90, y0 + box["height"] * 0.7)
        page.mouse.down()
        for i in range(1, 12):
            page.mouse.move(x0 + 20 + stroke * 90 + i * 7, y0 + wobble + box["height"] * (0.6 - 0.4 * ((i % 4) / 3)))
        page.mouse.up()


def days_back(page: Page, days: int) -> None:
    """The phone behaves as if it were `days` earlier: its edits carry those times."""
    app_eval(page, """
        const s = await m.db.getMeta("session");
        m.model.setServerOffset((s.server_offset_ms || 0) - arg * 86400000);
    """, days)


def step(page: Page, name: str, note: str | None = None) -> None:
    page.get_by_test_id(f"step-{name}").click()
    form = page.get_by_test_id("step-form")
    if note is not None:
        form.locator("textarea").fill(note)
    if name == "delivered":
        sign(page)
    form.get_by_test_id("step-save").click()
    expect(page.locator(f"[data-testid=matter-event][data-step={name}]")).to_have_count(1)


def custody(page: Page, action: str, code: str) -> None:
    page.get_by_test_id(f"custody-{action}-{code}").click()
    place = {"handed_to_window": "window", "back_from_window": "agent", "kept_by_window": "kept",
             "returned": "resident", "received": "agent"}[action]
    expect(page.locator(f"[data-testid=material][data-code={code}]")).to_have_attribute("data-place", place)


def test_proxy_story(context: BrowserContext, page: Page, browser: Browser, browser_context_args: dict[str, Any],
                     server: Server, request: pytest.FixtureRequest) -> None:
    errors = watch_errors(page)
    tag = uuid.uuid4().hex[:6]
    title = f"代办市民卡补办 {tag}"

    # -- worker1, offline on a visit: a proxy matter for an elderly resident, delegated to agent1 -------
    login(page, server.url, "worker1")
    wait_first_sync(page)
    wait_service_worker(page)
    zh = msgs(page)
    context.set_offline(True)
    page.get_by_test_id("household-row").first.click()
    household_id = page.url.rsplit("/", 1)[1]
    visit_id = record_visit(page, f"走访 {tag}：老人的市民卡丢了，不方便下山补办。")
    page.get_by_role("link", name=zh["household.action_matter"]).first.click()
    page.get_by_label(zh["field.matters.title"]).fill(title)
    page.get_by_label(zh["matter.category_top"]).select_option("proxy")
    page.get_by_label(zh["matter.category_sub"]).select_option("proxy.citizen_card")
    resident_sel = page.get_by_label(zh["field.matters.resident_id"])
    resident_id = resident_sel.locator("option").nth(1).get_attribute("value")
    resident_sel.select_option(resident_id)
    agent_sel = page.get_by_label(zh["matter.agent"])
    expect(agent_sel).to_be_visible()                       # the category made it a proxy matter
    agent_id = app_eval(page, "return (await m.model.list('users')).find((u) => u.username === 'agent1').id")
    expect(agent_sel).to_have_value(agent_id)                # the village's only agent, preselected
    page.get_by_role("button", name=zh["matter.save"]).click()
    page.wait_for_url("**/#/matter/**")
    matter_id = page.url.rsplit("/", 1)[1].split("?")[0]
    expect(page.get_by_test_id("need-delegation")).to_be_visible()
    context.set_offline(False)
    wait_synced(page, timeout=60)

    # -- agent1: syncs, then in the village with no signal -----------------------------------------------
    actx = browser.new_context(**browser_context_args)
    actx.set_default_timeout(20_000)
    apage = actx.new_page()
    errors += watch_errors(apage)
    agent_login(apage, server.url)
    wait_first_sync(apage)
    wait_service_worker(apage)
    row = apage.get_by_test_id("proxy-row").filter(has_text=title)
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("need-delegation-chip")).to_be_visible()
    actx.set_offline(True)
    days_back(apage, 5)
    row.click()
    # no step may be taken before the resident's authorisation
    expect(apage.get_by_test_id("step-accepted")).to_be_disabled()
    apage.get_by_test_id("delegation-open").click()
    sign(apage)
    apage.get_by_test_id("delegation-save").click()
    expect(apage.get_by_test_id("delegation")).to_have_count(1)
    expect(apage.get_by_test_id("step-accepted")).to_be_enabled()
    apage.get_by_test_id("custody-receive-all").click()
    for code in ("id_card", "photo_1inch", "old_card_or_loss_report", "proxy_authorisation"):
        expect(apage.locator(f"[data-testid=material][data-code={code}]")).to_have_attribute("data-place", "agent")
    step(apage, "accepted", "已接件，材料已收齐。")
    step(apage, "waiting_materials", "一寸照片不够清楚，老人家属去镇上重拍。")
    expect(apage.get_by_test_id("clock-paused")).to_be_visible()
    days_back(apage, 3)
    step(apage, "materials_complete")
    expect(apage.get_by_test_id("clock-paused")).to_have_count(0)

    # -- to town: online ----------------------------------------------------------------------------------
    actx.set_offline(False)
    wait_synced(apage, timeout=60)
    apage.evaluate("(h) => { location.hash = h; }", "#/proxy/packing")
    packed = apage.get_by_test_id("packing-matter").filter(has_text=title)
    expect(packed.get_by_test_id("packing-item")).to_have_count(4)
    apage.evaluate("(h) => { location.hash = h; }", f"#/matter/{matter_id}")
    for code in ("id_card", "photo_1inch", "old_card_or_loss_report", "proxy_authorisation"):
        custody(apage, "handed_to_window", code)
    step(apage, "submitted_to_window")
    step(apage, "result_obtained", "新市民卡已制好，窗口收回旧卡。")
    custody(apage, "back_from_window", "id_card")
    custody(apage, "kept_by_window", "old_card_or_loss_report")
    custody(apage, "kept_by_window", "proxy_authorisation")
    wait_synced(apage, timeout=60)

    # -- back in the village, offline: return the ID card, deliver with a signature, the rating --------
    actx.set_offline(True)
    custody(apage, "returned", "id_card")
    step(apage, "delivered", "新卡和身份证已当面交给老人。")
    apage.get_by_test_id("satisfaction-satisfied").click()
    apage.get_by_label(zh["matter_detail.feedback"]).fill("不用下山就办好了")
    apage.get_by_test_id("feedback-save").click()
    expect(apage.get_by_test_id("feedback-chip")).to_have_text(zh["satisfaction.satisfied"])

    # -- a village office where uploads fail: records first, blobs later -----------------------------------
    # the context, not the page: the service worker makes the fetch
    def no_uploads(route: Any) -> None:
        if route.request.method == "PATCH":
            route.abort("internetdisconnected")
        else:
            route.continue_()

    actx.route("**/api/v1/blobs/**", no_uploads)
    actx.set_offline(False)
    def records_first() -> Any:
        st = app_eval(apage, """
            const c = await m.db.counts();
            return {outbox: c.outbox, blobs: c.blobsPending, running: m.sync.status().running,
                    error: m.sync.status().lastError};
        """)
        return st if st["outbox"] == 0 and st["blobs"] > 0 and not st["running"] else None

    wait_until(records_first, 60, what="records pushed, the delivery signature still on the phone", page=apage)
    # worker1 sees the delivery with its signature "uploading", never missing
    page.evaluate("(h) => { location.hash = h; }", f"#/matter/{matter_id}")
    app_eval(page, "await m.sync.run();")
    delivered = page.locator("[data-testid=matter-event][data-step=delivered]")
    expect(delivered).to_have_count(1)
    expect(delivered.get_by_test_id("signature-state")).to_have_text(zh["sig.uploading"])
    staff = server.api("staff1")
    request.addfinalizer(staff.close)
    summary = staff.get(f"/matters/{matter_id}/proxy").json()
    assert summary["steps"][-1]["step"] == "delivered"
    assert summary["steps"][-1]["signature"]["state"] == "uploading"
    # the upload goes through
    actx.unroute("**/api/v1/blobs/**")
    app_eval(apage, "await m.sync.run();")
    wait_synced(apage, timeout=60)
    summary = staff.get(f"/matters/{matter_id}/proxy").json()
    assert summary["steps"][-1]["signature"]["state"] == "received"
    page.reload()
    expect(page.locator("[data-testid=matter-event][data-step=delivered] img.sig-img")).to_be_visible()

    # -- staff1 closes it (销号) ---------------------------------------------------------------------------
    r = staff.post("/sync/push", json={"protocol": 1, "mutations": [{
        "mid": str(uuid.uuid4()), "collection": "matter_events", "id": str(uuid.uuid4()), "op": "upsert", "base": 0,
        "fields": {"matter_id": matter_id, "kind": "status", "from": "resolved", "to": "closed", "note": "回访满意，销号"},
        "at": datetime.now(timezone.utc).isoformat()}]})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "applied", r.text

    # -- what the server holds: every event, by whom and for whom, the custody trail, the pause ----------
    summary = staff.get(f"/matters/{matter_id}/proxy").json()
    snap = pull_all(server, "staff1")
    m = snap[("matters", matter_id)]
    worker_id = records(snap, "users", lambda u: u["username"] == "worker1")[0]["id"]
    assert (m["status"], m["handling_mode"], m["assignee_id"], m["resident_id"]) == ("closed", "proxy", agent_id, resident_id)
    assert (m["created_by"], m["visit_id"], m["channel"], m["household_id"]) == (worker_id, visit_id, "visit", household_id)
    events = sorted(records(snap, "matter_events", lambda e: e["matter_id"] == matter_id), key=lambda e: e["at"])
    kinds = [(e["kind"], e.get("step") or (e["data"] or {}).get("action") or e.get("to")) for e in events]
    assert kinds == [
        ("delegation", None), ("custody", "received"), ("step", "accepted"), ("step", "waiting_materials"),
        ("step", "materials_complete"), ("custody", "handed_to_window"), ("custody", "handed_to_window"),
        ("custody", "handed_to_window"), ("custody", "handed_to_window"), ("step", "submitted_to_window"),
        ("step", "result_obtained"), ("custody", "back_from_window"), ("custody", "kept_by_window"),
        ("custody", "kept_by_window"), ("custody", "returned"), ("step", "delivered"), ("feedback", None),
        ("status", "closed"),
    ], kinds
    staff_id = records(snap, "users", lambda u: u["username"] == "staff1")[0]["id"]
    for e in events:
        assert e["actor_id"] == (staff_id if e["kind"] == "status" else agent_id), e
        if e["kind"] in ("delegation", "custody", "feedback") or e.get("step") == "delivered":
            assert e["for_resident_id"] == resident_id, e              # for whom
    deleg = summary["delegations"][0]
    assert (deleg["authoriser_id"], deleg["agent_id"], deleg["by"]) == (resident_id, agent_id, agent_id)
    assert deleg["signature"]["state"] == "received"
    trail = {(c["code"], c["form"]): ([s["action"] for s in c["trail"]], c["place"]) for c in summary["custody"]}
    assert trail == {
        ("id_card", "original"): (["received", "handed_to_window", "back_from_window", "returned"], "resident"),
        ("old_card_or_loss_report", "original"): (["received", "handed_to_window", "kept_by_window"], "kept"),
        ("proxy_authorisation", "original"): (["received", "handed_to_window", "kept_by_window"], "kept"),
        ("photo_1inch", "copy"): (["received", "handed_to_window"], "window"),
    }
    assert summary["unaccounted_originals"] == []
    assert summary["feedback"][0]["satisfaction"] == "satisfied" and summary["feedback"][0]["comment"] == "不用下山就办好了"
    result = [s for s in summary["steps"] if s["step"] == "result_obtained"][0]
    assert result["note"] == "新市民卡已制好，窗口收回旧卡。"
    # the deadline: 10 working days from taking it on, moved on by the working days spent waiting
    at = {e.get("step"): e["at"] for e in events if e["kind"] == "step"}
    paused = workdays_between(local_day(at["waiting_materials"]), local_day(at["materials_complete"]))
    assert local_day(at["materials_complete"]) - local_day(at["waiting_materials"]) == timedelta(days=2)
    assert paused == m["paused_workdays"] and m["paused_since"] is None
    assert m["deadline"] == add_workdays(local_day(at["accepted"]), 10).isoformat()
    assert m["effective_deadline"] == add_workdays(date.fromisoformat(m["deadline"]), paused).isoformat()

    # -- the delegation ended: the matter leaves agent1's phone ------------------------------------------
    app_eval(apage, "await m.sync.run();")
    wait_synced(apage, timeout=60)
    assert local_record(apage, "matters", matter_id) is None
    apage.evaluate("(h) => { location.hash = h; }", "#/proxy")
    expect(apage.get_by_test_id("proxy-row").filter(has_text=title)).to_have_count(0)
    actx.close()
    assert errors == []
