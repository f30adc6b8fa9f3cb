"""A push whose answer is lost after the server committed it: the app retries the same batch (same
mids), the server answers from its log, and nothing is stored twice (issue 4, end-to-end test 4)."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from playwright.sync_api import Page, Route, expect

from .conftest import Server
from .helpers import (mutation_log_count, msgs, outbox, pending_count_ui, pull_all, record_matter, record_visit,
                      records, login, tab, wait_first_sync, wait_synced, wait_until, watch_errors)


def _body(route: Route) -> dict[str, Any]:
    raw = route.request.post_data_buffer or b""
    if (route.request.headers.get("content-encoding") or "").lower() == "gzip":
        raw = gzip.decompress(raw)
    return json.loads(raw)  # type: ignore[no-any-return]


def test_lost_push_answer_is_retried_without_duplicates(page: Page, server: Server) -> None:
    errors = watch_errors(page)
    login(page, server.url, "worker1")
    wait_first_sync(page)
    zh = msgs(page)

    tag = uuid.uuid4().hex[:8]
    page.get_by_test_id("household-row").first.click()
    visit_id = record_visit(page, f"回答丢失测试 {tag}：老人说腿脚好些了")
    matter_id = record_matter(page, f"自来水管冻裂 {tag}", "冬天水管冻裂，需要村里帮忙联系维修")
    assert len(outbox(page)) == 2
    logged_before = mutation_log_count(server, "worker1")

    # The server handles every push; the answer of the first one never reaches the app.
    pushes: list[dict[str, Any]] = []

    def on_push(route: Route) -> None:
        sent = _body(route)
        answer = route.fetch()
        pushes.append({"mids": [m["mid"] for m in sent["mutations"]], "status": answer.status,
                       "results": answer.json()["results"] if answer.ok else None})
        if len(pushes) == 1:
            route.abort("connectionreset")
        else:
            route.fulfill(response=answer)

    page.route("**/api/v1/sync/push", on_push)
    tab(page, "sync")
    page.get_by_role("button", name=zh["syncp.sync_now"]).click()

    # the app saw a network error, kept the batch and retries it by itself (back-off, no click)
    wait_until(lambda: len(pushes) >= 2, timeout=30, what="the app to push the batch again", page=page)
    wait_synced(page)
    expect(page.get_by_test_id("pending-count")).to_have_text(zh["syncp.pending_n"].replace("{n}", "0"))
    assert pending_count_ui(page) == 0

    first, second = pushes[0], pushes[1]
    assert first["status"] == 200 and second["status"] == 200
    assert sorted(first["mids"]) == sorted(second["mids"]), "the retry must re-send the same mutations (same mids)"
    assert len(first["mids"]) == 2
    # the server answered the retry from its log: the very same results (status, version)
    by_mid = lambda rs: {r["mid"]: (r["status"], r.get("version"), r.get("id")) for r in rs}  # noqa: E731
    assert by_mid(second["results"]) == by_mid(first["results"])
    assert {r["status"] for r in first["results"]} == {"applied"}

    # nothing stored twice
    assert mutation_log_count(server, "worker1") == logged_before + 2
    snap = pull_all(server, "worker1")
    visits = records(snap, "visits", lambda r: tag in (r.get("narrative") or ""))
    matters = records(snap, "matters", lambda r: tag in (r.get("title") or ""))
    assert [v["id"] for v in visits] == [visit_id]
    assert [m["id"] for m in matters] == [matter_id]
    assert matters[0]["visit_id"] == visit_id
    page.unroute_all(behavior="ignoreErrors")
    assert errors == []
