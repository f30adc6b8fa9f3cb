"""A grid worker's day offline (issue 4, end-to-end test 1): sign in online once; no signal from then
on; the app opens from the service worker; a visit with a photo and a new matter are recorded; the
page is closed and opened again (still there, still pending); signal returns; everything syncs once.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from .conftest import Server
from .helpers import (app_eval, blob_bytes, blob_head, fmt, make_photo, msgs, pending_count_ui, pull_all,
                      record_matter, record_visit, records, login, sha256, tab, wait_first_sync,
                      wait_service_worker, wait_synced, watch_errors)


def test_offline_day(context: BrowserContext, page: Page, server: Server, tmp_path: Path) -> None:
    errors = watch_errors(page)
    login(page, server.url, "worker1")
    wait_first_sync(page)
    wait_service_worker(page)
    zh = msgs(page)
    photo = tmp_path / "roof.jpg"
    original = make_photo(page, photo)
    assert 1_000_000 <= len(original) <= 2_500_000, len(original)

    # no signal from here on
    context.set_offline(True)
    page.reload()
    page.get_by_test_id("household-row").first.wait_for(state="visible")
    assert page.evaluate("navigator.onLine") is False
    assert page.evaluate("!!navigator.serviceWorker.controller"), "the page did not open from the service worker"

    tag = uuid.uuid4().hex[:8]
    narrative = f"离线走访 {tag}：老人独居，屋顶漏雨，已拍照。"
    title = f"屋顶漏雨需修缮 {tag}"
    description = "东侧屋顶瓦片破损，下雨天漏水，老人无力自行修缮。"
    page.get_by_test_id("household-row").first.click()
    household_id = re.search(r"#/household/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]
    visit_id = record_visit(page, narrative, photo=photo, needs=["屋顶修缮"])
    matter_id = record_matter(page, title, description)
    expect(page.get_by_text(title).first).to_be_visible()
    sha = app_eval(page, "return (await m.model.view('visits', arg)).photos[0]", visit_id)

    # the page is closed; a new one opens the app again, still offline
    page.close()
    page = context.new_page()
    errors += watch_errors(page)
    page.goto(server.url + "/")
    page.get_by_test_id("household-row").first.wait_for(state="visible")
    badge = page.locator(".sync-badge")
    expect(badge).to_have_text(fmt(zh["badge.offline_pending"], n=2))
    page.evaluate("(h) => { location.hash = h; }", f"#/household/{household_id}")
    visit_row = page.get_by_test_id("timeline-visit").filter(has_text=tag)
    expect(visit_row).to_have_count(1)
    expect(visit_row.get_by_text(zh["common.pending"])).to_be_visible()
    matter_row = page.get_by_test_id("timeline-matter").filter(has_text=title)
    expect(matter_row).to_have_count(1)
    expect(matter_row.get_by_text(zh["common.pending"])).to_be_visible()
    assert pending_count_ui(page) == 2
    expect(page.get_by_text(fmt(zh["syncp.photos_n"], n=1))).to_be_visible()

    # signal: the app syncs by itself on the `online` event
    context.set_offline(False)
    wait_synced(page, timeout=60)
    expect(page.get_by_test_id("pending-count")).to_have_text(fmt(zh["syncp.pending_n"], n=0))
    expect(page.get_by_text(fmt(zh["syncp.photos_n"], n=0))).to_be_visible()
    assert pending_count_ui(page) == 0

    # the server has exactly one of each, as recorded
    snap = pull_all(server, "worker1")
    visits = records(snap, "visits", lambda r: tag in (r.get("narrative") or ""))
    matters = records(snap, "matters", lambda r: tag in (r.get("title") or ""))
    assert len(visits) == 1 and len(matters) == 1, (visits, matters)
    v, mt = visits[0], matters[0]
    assert (v["id"], v["household_id"], v["narrative"], v["needs"]) == (visit_id, household_id, narrative, ["屋顶修缮"])
    assert v["checklist"]["left_phone"] is True and v["checklist"]["took_situation"] is True
    assert v["photos"] == [sha]
    assert (mt["id"], mt["household_id"], mt["title"], mt["description"]) == (matter_id, household_id, title, description)
    assert mt["visit_id"] == visit_id and mt["urgency"] == "urgent" and mt["status"] == "submitted"

    # the photo's bytes are on the server, complete, and hash to its name
    status, headers = blob_head(server, "worker1", sha)
    assert status == 200 and headers["upload-offset"] == headers["upload-length"]
    data = blob_bytes(server, "worker1", sha)
    assert sha256(data) == sha
    assert data[:3] == b"\xff\xd8\xff" and len(data) < len(original), "the photo was not recompressed as a JPEG"

    # the dossier no longer marks them pending
    tab(page, "households")
    page.evaluate("(h) => { location.hash = h; }", f"#/household/{household_id}")
    expect(page.get_by_test_id("timeline-visit").filter(has_text=tag).get_by_text(zh["common.pending"])).to_have_count(0)
    assert errors == []
