"""A proxy matter reassigned while its agent, offline, submits it at the window (issue 5, conflict 1).

agent1's phone holds a delegated matter; with no signal it records "submitted at the window".
Meanwhile staff1 hands the matter to another agent of the village. When agent1's phone syncs, its
step is kept but not applied, the matter leaves the phone, and both agents find the conflict in
their inbox; only staff decide whether the step counts.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from .conftest import ROOT, Server
from .helpers import app_eval, local_record, msgs, pull_all, records, tab, wait_first_sync, wait_synced, watch_errors
from .test_proxy_story import agent_login


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def mutation(collection: str, rid: str, fields: dict[str, Any], base: int = 0) -> dict[str, Any]:
    return {"mid": str(uuid.uuid4()), "collection": collection, "id": rid, "op": "upsert", "base": base,
            "fields": fields, "at": now()}


def push_ok(client: Any, *muts: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post("/sync/push", json={"protocol": 1, "mutations": list(muts)})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert all(x["status"] == "applied" for x in results), results
    return results  # type: ignore[no-any-return]


def test_reassigned_while_submitting_offline(page: Page, context: BrowserContext, browser: Browser,
                                             browser_context_args: dict[str, Any], fresh_server: Server,
                                             request: pytest.FixtureRequest) -> None:
    server = fresh_server
    subprocess.run([sys.executable, "-m", "server", "user", "add", "agent9", "--role", "proxy_agent",
                    "--areas", "章水镇/杖锡村", "--password", "zhou-daiban-9", "--display-name", "周代办", "--db", str(server.db)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    errors = watch_errors(page)
    snap = pull_all(server, "worker1")
    users = {u["username"]: u["id"] for u in records(snap, "users")}
    hh = records(snap, "households")[0]
    res = records(snap, "residents", lambda r: r["household_id"] == hh["id"])[0]
    tag = uuid.uuid4().hex[:6]
    title = f"代办社保登记 {tag}"
    matter_id, sig = str(uuid.uuid4()), "7" * 64
    worker, staff, agent_api = server.api("worker1"), server.api("staff1"), server.api("agent1")
    for c in (worker, staff, agent_api):
        request.addfinalizer(c.close)
    push_ok(worker, mutation("matters", matter_id, {
        "household_id": hh["id"], "resident_id": res["id"], "title": title, "category": "proxy.social_insurance_registration",
        "handling_mode": "proxy", "assignee_id": users["agent1"], "channel": "visit"}))
    push_ok(agent_api, mutation("matter_events", str(uuid.uuid4()), {
        "matter_id": matter_id, "kind": "delegation", "for_resident_id": res["id"], "for_user_id": users["agent1"],
        "data": {"until": "2099-12-31", "signature": sig}, "attachments": [sig]}),
        mutation("matter_events", str(uuid.uuid4()), {"matter_id": matter_id, "kind": "step", "step": "accepted",
                                                      "from": "submitted", "to": "in_progress"}))

    # agent1's phone holds the matter; in town without signal it records the submission
    agent_login(page, server.url)
    wait_first_sync(page)
    zh = msgs(page)
    page.get_by_test_id("proxy-row").filter(has_text=title).click()
    context.set_offline(True)
    page.get_by_test_id("step-submitted_to_window").click()
    page.get_by_test_id("step-form").get_by_test_id("step-save").click()
    expect(page.locator("[data-testid=matter-event][data-step=submitted_to_window]")).to_have_count(1)

    # meanwhile the town hands the matter to agent9
    version = pull_all(server, "staff1")[("matters", matter_id)]["version"]
    push_ok(staff, mutation("matters", matter_id, {"assignee_id": users["agent9"]}, base=version))

    # signal: the step is pushed first, kept but not applied; the matter leaves agent1's phone
    context.set_offline(False)
    wait_synced(page, timeout=60)
    assert local_record(page, "matters", matter_id) is None
    tab(page, "conflicts")
    item = page.get_by_test_id("conflict-item").filter(has_text=title)
    expect(item).to_have_count(1)
    expect(item.get_by_test_id("delegation-conflict")).to_contain_text(zh["step.submitted_to_window"])
    expect(item.get_by_role("button", name=zh["conflicts.count_work"])).to_have_count(0)   # staff decide
    tab(page, "proxy")
    expect(page.get_by_test_id("proxy-row").filter(has_text=title)).to_have_count(0)

    # agent9 sees the matter, the step marked not applied, and the same conflict
    ctx2 = browser.new_context(**browser_context_args)
    p2 = ctx2.new_page()
    errors += watch_errors(p2)
    p2.goto(server.url + "/")
    p2.get_by_label(zh["login.username"]).fill("agent9")
    p2.get_by_label(zh["login.password"]).fill("zhou-daiban-9")
    p2.get_by_role("button", name=zh["login.submit"]).click()
    p2.get_by_test_id("proxy-row").filter(has_text=title).click()
    step = p2.locator("[data-testid=matter-event][data-step=submitted_to_window]")
    expect(step.get_by_text(zh["event.not_applied"])).to_be_visible()
    tab(p2, "conflicts")
    expect(p2.get_by_test_id("conflict-item").filter(has_text=title)).to_have_count(1)

    # staff count the step; everyone's copy says so after sync
    snap = pull_all(server, "staff1")
    conflict = records(snap, "conflicts", lambda c: c["kind"] == "delegation" and c["collection"] == "matter_events")
    conflict = [c for c in conflict if (c["mutation"]["fields"] or {}).get("matter_id") == matter_id]
    assert len(conflict) == 1 and conflict[0]["status"] == "open"
    assert {users["agent1"], conflict[0]["fields"]["assignee_id"]["current"]} <= set(conflict[0]["involved"])
    push_ok(staff, mutation("conflicts", conflict[0]["id"], {"resolution": "incoming"}, base=conflict[0]["version"]))
    app_eval(p2, "await m.sync.run();")
    wait_synced(p2, timeout=60)
    ev = records(pull_all(server, "staff1"), "matter_events",
                 lambda e: e["matter_id"] == matter_id and e.get("step") == "submitted_to_window")
    assert len(ev) == 1 and ev[0]["applied"] is True and ev[0]["actor_id"] == users["agent1"]
    ctx2.close()
    assert errors == []

