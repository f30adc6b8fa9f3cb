"""Two phones, one household (issue 4, end-to-end test 2): worker1 and worker2 change the same
household's phone number offline and sync one after the other. Both end with the same record, the
conflict is in both inboxes with both values, and the resolution made on the author's phone (the one
that synced second) reaches the other phone with its next sync."""

from __future__ import annotations

import random
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from .conftest import Server
from .helpers import (edit_household_phone, household_ids, local_record, login, msgs, open_household, pull_all,
                      records, sync_now, tab, wait_first_sync, wait_synced, watch_errors)


def _phone() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


def _device(browser: Browser, args: dict[str, Any], server: Server, username: str) -> tuple[BrowserContext, Page, list[str]]:
    ctx = browser.new_context(**args)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    errors = watch_errors(page)
    login(page, server.url, username)
    wait_first_sync(page)
    return ctx, page, errors


def _conflict_card(page: Page, p1: str, p2: str) -> Any:
    tab(page, "conflicts")
    return page.get_by_test_id("conflict-item").filter(has_text=p1).filter(has_text=p2)


def test_same_field_edited_on_two_phones(browser: Browser, browser_context_args: dict[str, Any], server: Server) -> None:
    ctx_a, a, errors_a = _device(browser, browser_context_args, server, "worker1")
    ctx_b, b, errors_b = _device(browser, browser_context_args, server, "worker2")
    try:
        zh = msgs(a)
        hid = household_ids(a)[0]
        hh = local_record(a, "households", hid)
        assert hh is not None
        address = hh["data"]["address"]
        p1, p2 = _phone(), _phone()

        # no signal on either phone; each changes the phone number, worker2 a little later
        ctx_a.set_offline(True)
        ctx_b.set_offline(True)
        for page, phone in ((a, p1), (b, p2)):
            open_household(page, address)
            assert hid in page.url
            edit_household_phone(page, phone)
            expect(page.locator(".hh-card").get_by_text(phone)).to_be_visible()
            expect(page.locator(".hh-card").get_by_text(zh["common.pending"])).to_be_visible()
            page.wait_for_timeout(1100)  # `at` of the second edit is strictly later

        # worker1 syncs first (applied), then worker2 (conflict: the later edit, worker2's, wins)
        ctx_a.set_offline(False)
        wait_synced(a)
        ctx_b.set_offline(False)
        wait_synced(b)
        sync_now(a)

        server_hh = records(pull_all(server, "worker1"), "households", lambda r: r["id"] == hid)[0]
        ra, rb = local_record(a, "households", hid), local_record(b, "households", hid)
        assert ra is not None and rb is not None
        assert ra["version"] == rb["version"] == server_hh["version"]
        assert ra["data"]["phone"] == rb["data"]["phone"] == server_hh["phone"] == p2
        for page in (a, b):
            open_household(page, address)
            expect(page.locator(".hh-card").get_by_text(p2)).to_be_visible()
            expect(page.locator(".hh-card").get_by_text(zh["common.pending"])).to_have_count(0)

        # the conflict, with both values, in both inboxes
        for page in (a, b):
            card = _conflict_card(page, p1, p2)
            expect(card).to_have_count(1)
            heads = card.locator(".cv-head")
            expect(heads.filter(has_text=zh["conflicts.mine"])).to_have_count(1)
            expect(heads.filter(has_text=zh["conflicts.theirs"])).to_have_count(1)
            expect(card.locator(".cv-value").filter(has_text=p1)).to_be_visible()
            expect(card.locator(".cv-value").filter(has_text=p2)).to_be_visible()
            expect(card).to_contain_text(zh["field.households.phone"])
        # each phone calls its own value "mine"
        for page, mine, theirs in ((a, p1, p2), (b, p2, p1)):
            card = _conflict_card(page, p1, p2)
            expect(card.locator(".cv-mine .cv-value")).to_have_text(mine)
            expect(card.locator(".cv-theirs .cv-value")).to_have_text(theirs)
        # worker1 is not the author: the card says who decides and offers no buttons
        card_a = _conflict_card(a, p1, p2)
        expect(card_a.get_by_role("button")).to_have_count(0)

        # worker2 (the author) keeps worker1's number, on the phone, and syncs
        card_b = _conflict_card(b, p1, p2)
        card_b.get_by_role("button", name=zh["conflicts.keep_theirs"]).click()
        expect(_conflict_card(b, p1, p2).get_by_text(zh["common.pending"])).to_be_visible()
        sync_now(b)
        expect(_conflict_card(b, p1, p2).locator(".cf-resolved")).to_be_visible()
        rb = local_record(b, "households", hid)
        assert rb is not None and rb["data"]["phone"] == p1

        # … and it reaches worker1's phone with its next sync
        sync_now(a)
        expect(_conflict_card(a, p1, p2).locator(".cf-resolved")).to_be_visible()
        ra = local_record(a, "households", hid)
        assert ra is not None and ra["data"]["phone"] == p1 and ra["version"] == rb["version"]
        open_household(a, address)
        expect(a.locator(".hh-card").get_by_text(p1)).to_be_visible()

        snap = pull_all(server, "worker1")
        assert records(snap, "households", lambda r: r["id"] == hid)[0]["phone"] == p1
        conflicts = records(snap, "conflicts", lambda r: r["record_id"] == hid and r["kind"] == "field"
                            and (r["fields"] or {}).get("phone", {}).get("incoming") == p2)
        assert len(conflicts) == 1
        c = conflicts[0]
        assert c["fields"]["phone"]["current"] == p1 and c["status"] == "resolved" and c["resolution"] == "current"
        assert errors_a == [] and errors_b == []
    finally:
        ctx_a.close()
        ctx_b.close()
