"""Hostile records render inert (issue 7): HTML and script payloads pushed through the API as a
grid worker's ordinary data, then opened in real Chromium in the field app (households list,
household card, matter detail, conflicts, rejected edits) and in the staff console (dashboard,
intake, matters, households, dossier, matter, conflicts).

In every view: no dialog opens, no injected element exists, no script ran (``window.__xss``), the
page raised no error, the Content-Security-Policy reported no violation (the app itself has no
inline script or style), and the payload's text is shown literally.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from playwright.sync_api import Browser, Page, expect

from .conftest import Server
from .helpers import api, login, tab, wait_first_sync, watch_errors

TAG = "XSS测"
PAYLOADS = {
    "img": f'{TAG}甲<img src=x id=xss-img onerror="window.__xss=1;alert(1)">',
    "script": f"{TAG}乙<script id=xss-script>window.__xss=2;alert(2)</script>",
    "svg": f'{TAG}丙"><svg id=xss-svg onload="window.__xss=3;alert(3)">',
    "attr": f"{TAG}丁' onmouseover='window.__xss=4' x='",
    "tmpl": f"{TAG}戊{{{{7*7}}}}${{alert(5)}}<%= 7*7 %>",
    "iframe": f'{TAG}己<iframe id=xss-iframe src="javascript:alert(6)"></iframe>',
    "sql": f"{TAG}庚'; DROP TABLE households; --",
}
INJECTED = "#xss-img, #xss-script, #xss-svg, #xss-iframe, [onmouseover], iframe, svg#xss-svg"

# Recorded before any script of the app runs: CSP violations and dialogs the page saw.
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def _at(minutes: int = 0) -> str:
    return (datetime.now(timezone(timedelta(hours=8))) - timedelta(minutes=minutes)).isoformat()


def _mut(coll: str, rid: str, fields: dict[str, Any], base: int = 0, at: str | None = None) -> dict[str, Any]:
    return {"mid": str(uuid.uuid4()), "collection": coll, "id": rid, "op": "upsert", "base": base,
            "fields": fields, "at": at or _at(5)}


def seed(server: Server) -> dict[str, str]:
    """Hostile households, residents, visits, matters, events and a rejected edit (a conflict),
    pushed as worker1; a hostile device name and app version for the staff's sync-health table."""
    ids: dict[str, str] = {}
    with api(server, "worker1") as c:
        me = c.post("/auth/login", json={"username": "worker1", "password": "demo",
                                         "device_name": PAYLOADS["img"][:100]}).json()
        c.headers["Authorization"] = "Bearer " + me["token"]
        c.headers["X-App-Version"] = PAYLOADS["script"][:100]
        assert c.get("/sync/pull", params={"limit": 1}).status_code == 200
        grid = me["user"]["areas"][0]
        muts = []
        for key, text in PAYLOADS.items():
            hid, rid, vid, mid = (str(uuid.uuid4()) for _ in range(4))
            ids[key] = hid
            ids[f"matter-{key}"] = mid
            muts += [
                _mut("households", hid, {"grid_id": grid, "address": text[:200], "head_name": text[:50],
                                         "notes": text, "tags": [text[:20]]}),
                _mut("residents", rid, {"household_id": hid, "name": text[:50], "relation": text[:20], "notes": text}),
                _mut("visits", vid, {"household_id": hid, "visited_at": _at(30), "narrative": text,
                                     "needs": [text]}),
                _mut("matters", mid, {"household_id": hid, "title": text[:200], "description": text}),
                _mut("matter_events", str(uuid.uuid4()), {"matter_id": mid, "kind": "note", "note": text}),
            ]
        r = c.post("/sync/push", json={"protocol": 1, "mutations": muts})
        assert r.status_code == 200, r.text
        assert all(x["status"] == "applied" for x in r.json()["results"]), r.text
        version = r.json()["results"][0]["version"]
        # A rejected edit (base far ahead of the record): stored with the payload in it.
        r = c.post("/sync/push", json={"protocol": 1, "mutations": [
            _mut("households", ids["img"], {"notes": PAYLOADS["svg"]}, base=10 ** 9, at=_at(1))]})
        [res] = r.json()["results"]
        assert res["status"] == "rejected", res
        # A field conflict: worker2 and worker1 both change the notes from the same version.
        with api(server, "worker2") as c2:
            r = c2.post("/sync/push", json={"protocol": 1, "mutations": [
                _mut("households", ids["img"], {"notes": PAYLOADS["iframe"]}, base=version, at=_at(3))]})
            assert r.json()["results"][0]["status"] == "applied", r.text
        r = c.post("/sync/push", json={"protocol": 1, "mutations": [
            _mut("households", ids["img"], {"notes": PAYLOADS["attr"]}, base=version, at=_at(2))]})
        assert r.json()["results"][0]["status"] == "conflict", r.text
        ids["conflict"] = r.json()["results"][0]["conflict_id"]
    return ids


def assert_inert(page: Page, dialogs: list[str], errors: list[str], where: str) -> None:
    page.wait_for_timeout(300)  # an onerror/onload would have fired by now
    assert dialogs == [], (where, dialogs)
    assert errors == [], (where, errors)
    assert page.evaluate("() => window.__xss === undefined"), where
    assert page.locator(INJECTED).count() == 0, (where, page.content()[:2000])
    assert page.evaluate("() => window.__violations") == [], (where, page.evaluate("() => window.__violations"))


def _watch(page: Page) -> tuple[list[str], list[str]]:
    dialogs: list[str] = []

    def on_dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(WATCH)
    return dialogs, watch_errors(page)


def test_hostile_records_render_inert_in_the_field_app(browser: Browser, browser_context_args: dict[str, Any],
                                                       fresh_server: Server) -> None:
    ids = seed(fresh_server)
    ctx = browser.new_context(**browser_context_args)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    dialogs, errors = _watch(page)
    try:
        login(page, fresh_server.url, "worker1")
        wait_first_sync(page)

        # households list, searched down to the hostile ones: every payload shown as text
        tab(page, "households")
        page.locator("input[type=search]").fill(TAG)
        rows = page.get_by_test_id("household-row")
        expect(rows).to_have_count(len(PAYLOADS))
        for text in PAYLOADS.values():
            expect(rows.filter(has_text=text[:50]).first).to_be_visible()
        assert_inert(page, dialogs, errors, "households list")

        for key, text in PAYLOADS.items():
            # household card: head, address, notes, tags, residents, the visit and matter timeline
            page.goto(f"{fresh_server.url}/#/household/{ids[key]}")
            page.get_by_test_id("action-visit").wait_for(state="visible")
            expect(page.get_by_text(text[:50], exact=False).first).to_be_visible()
            assert page.locator("main").inner_text().count(text[:20]) >= 2
            assert_inert(page, dialogs, errors, f"household card {key}")

            # matter detail: title, description, the note event
            page.goto(f"{fresh_server.url}/#/matter/{ids['matter-' + key]}")
            page.get_by_test_id("matter-event").first.wait_for(state="visible")
            body = page.locator("main").inner_text()
            assert text in body, (key, body[:500])
            assert_inert(page, dialogs, errors, f"matter detail {key}")

        # conflicts: both values of the notes, labelled with the hostile household
        tab(page, "conflicts")
        item = page.get_by_test_id("conflict-item").filter(has_text=PAYLOADS["img"][:50])
        item.wait_for(state="visible")
        text = item.inner_text()
        assert PAYLOADS["attr"] in text and PAYLOADS["iframe"] in text, text
        assert_inert(page, dialogs, errors, "conflicts")

        # the sync panel: the rejected edit, labelled with the hostile household
        tab(page, "sync")
        rejected = page.get_by_test_id("rejected-item").filter(has_text=PAYLOADS["img"][:50])
        rejected.first.wait_for(state="visible")
        assert_inert(page, dialogs, errors, "sync panel")
    finally:
        ctx.close()


def test_hostile_records_render_inert_in_the_staff_console(browser: Browser, browser_context_args: dict[str, Any],
                                                           fresh_server: Server) -> None:
    ids = seed(fresh_server)
    with api(fresh_server, "admin") as c:  # an area whose name is a payload, for the area picker and ranking
        me = c.post("/auth/login", json={"username": "admin", "password": "demo"}).json()
        c.headers["Authorization"] = "Bearer " + me["token"]
        snapshot = c.get("/sync/pull", params={"limit": 1000}).json()
        town = next(ch["id"] for ch in snapshot["changes"]
                    if ch["collection"] == "areas" and (ch.get("data") or {}).get("level") == "town")
        r = c.post("/sync/push", json={"protocol": 1, "mutations": [
            _mut("areas", str(uuid.uuid4()), {"level": "village", "name": PAYLOADS["svg"][:100], "parent_id": town})]})
        assert r.json()["results"][0]["status"] == "applied", r.text
    ctx = browser.new_context(**browser_context_args)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    dialogs, errors = _watch(page)
    try:
        page.goto(fresh_server.url + "/staff/login")
        page.locator("input[name=username]").fill("staff1")
        page.locator("input[name=password]").fill("demo")
        page.locator("form button[type=submit], form input[type=submit]").first.click()
        page.wait_for_url(re.compile(r".*/staff/(\?.*)?$"))
        html = page.content()
        assert "<svg id=xss-svg" not in html and "<img src=x id=xss-img" not in html
        text = page.locator("body").inner_text()
        assert PAYLOADS["svg"][:100] in text, text[:1000]  # the area, named literally
        assert PAYLOADS["img"][:100] in text or PAYLOADS["script"][:100] in text, text[-1500:]  # device / version
        assert_inert(page, dialogs, errors, "staff dashboard")

        # the console's record pages: lists, the household dossier, the matter, the conflicts queue
        for path, needle in (("/staff/intake", PAYLOADS["img"][:200]), ("/staff/matters", PAYLOADS["svg"][:200]),
                             ("/staff/households", PAYLOADS["script"][:50]),
                             (f"/staff/households/{ids['img']}", PAYLOADS["img"][:50]),
                             (f"/staff/matters/{ids['matter-img']}", PAYLOADS["img"]),
                             (f"/staff/matters/{ids['matter-iframe']}", PAYLOADS["iframe"]),
                             ("/staff/conflicts", "备注"), (f"/staff/conflicts/{ids['conflict']}", PAYLOADS["attr"])):
            page.goto(fresh_server.url + path)
            text = page.locator("body").inner_text()
            assert needle in text, (path, text[:1500])
            assert_inert(page, dialogs, errors, path)
    finally:
        ctx.close()
